"""API keys: the secret's format, the record (a salted HMAC-SHA256 digest, never the secret), matching in constant
time, and malformed keys (no key id: nothing to look up)."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest

from clipper_core.state import ApiKey
from clipper_core.tenancy import keys
from clipper_core.tenancy.keys import SECRET_LENGTH, digest, matches, new_key, parse_key_id
from clipper_core.tenancy.limits import KeyLimits

SECRET = re.compile(r"^clk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def test_a_new_key_is_a_record_and_a_secret_shown_once() -> None:
    record, secret = new_key("app", "ci", KeyLimits.from_json({"requests_per_second": 5}), created_at=12.5)
    match = SECRET.fullmatch(secret)
    assert match is not None and len(secret) == SECRET_LENGTH == 60
    assert record.key_id == match.group(1) == parse_key_id(secret)
    assert (record.app_name, record.label, record.created_at) == ("app", "ci", 12.5)
    assert record.limits == {"requests_per_second": 5.0, "requests_burst": 5}
    assert re.fullmatch(r"[0-9a-f]{32}", record.salt)  # 16 random bytes
    assert secret not in repr(record) and match.group(2) not in repr(record)  # the secret itself is not kept


def test_the_digest_is_hmac_sha256_of_the_whole_secret_under_the_salt() -> None:
    record, secret = new_key("app")
    expected = hmac.new(bytes.fromhex(record.salt), secret.encode(), hashlib.sha256).hexdigest()
    assert record.digest == expected == digest(record.salt, secret)
    assert len(record.digest) == 64


def test_defaults_no_label_no_limits_now() -> None:
    record, _ = new_key("app", limits=KeyLimits())
    assert record.label == "" and record.limits is None and record.created_at > 1.7e9


def test_keys_salts_and_secrets_are_all_different() -> None:
    made = [new_key("app") for _ in range(500)]
    assert len({r.key_id for r, _ in made}) == 500
    assert len({r.salt for r, _ in made}) == 500
    assert len({s for _, s in made}) == 500
    assert len({r.digest for r, _ in made}) == 500


def test_matches_only_its_own_secret() -> None:
    record, secret = new_key("app")
    other, other_secret = new_key("app")
    assert matches(record, secret) and matches(other, other_secret)
    assert not matches(record, other_secret) and not matches(other, secret)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert parse_key_id(tampered) == record.key_id and not matches(record, tampered)
    assert not matches(record, "") and not matches(record, secret + "x") and not matches(record, "\ud800")
    # the same secret under another salt is another digest: a stolen digest says nothing about other records
    assert not matches(record.replace(salt=other.salt), secret)


def test_matching_compares_digests_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    record, secret = new_key("app")
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", recording)
    assert matches(record, secret) and not matches(record, secret[:-2] + "__")
    assert [b for _, b in compared] == [record.digest, record.digest]
    assert all(len(a) == len(b) == 64 for a, b in compared)  # whole digests, never a prefix of the secret


@pytest.mark.parametrize("malformed", [
    "", "clk_", "clk_0123456789ab", "clk_0123456789ab_", "clk_0123456789AB_" + "a" * 43,  # upper-case id
    "CLK_0123456789ab_" + "a" * 43, "clx_0123456789ab_" + "a" * 43, "clk_0123456789abx" + "a" * 43,
    "clk_0123456789a_" + "a" * 44, "clk_0123456789ab_" + "a" * 42, "clk_0123456789ab_" + "a" * 44,
    "clk_0123456789ab_" + "a" * 42 + "=", "clk_0123456789ab_" + "a" * 42 + "é", "clk_0123456789ab_" + "+" * 43,
    " clk_0123456789ab_" + "a" * 42, "Bearer clk_0123456789ab_" + "a" * 43, "clk_0123456789ab_" + "a" * 10**6,
    "clk_g123456789ab_" + "a" * 43, "clk_0123456789ab_" + "a" * 42 + "\n",
])
def test_a_malformed_key_has_no_key_id(malformed: str) -> None:
    assert parse_key_id(malformed) is None


@pytest.mark.parametrize("not_text", [None, 12, b"clk_0123456789ab_" + b"a" * 43, ["clk_"]])
def test_something_that_is_not_text_has_no_key_id(not_text: Any) -> None:
    assert parse_key_id(not_text) is None


def test_a_well_formed_key_parses() -> None:
    assert parse_key_id("clk_0123456789ab_" + "-_aZ09" * 7 + "x") == "0123456789ab"


def test_public_shows_everything_but_the_salt_and_the_digest() -> None:
    record, _ = new_key("app", "ci", KeyLimits(max_concurrent=2), created_at=1.0)
    assert record.public() == {"key_id": record.key_id, "app_name": "app", "label": "ci",
                               "limits": {"max_concurrent": 2}, "created_at": 1.0}
    assert isinstance(record, ApiKey) and keys.ApiKey is ApiKey
