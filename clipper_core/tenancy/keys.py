"""API keys of an application's query API: making one, finding its record, checking a secret against it.

A key's secret is ``clk_<key_id>_<secret>``: ``key_id`` is 12 random hex characters, public, the id of the record
that the store keeps (:class:`~clipper_core.state.ApiKey`) and that listings show; ``secret`` is
``secrets.token_urlsafe(32)`` (256 random bits). The whole string is shown once, when the key is made, and never
stored: the record keeps a random 16-byte ``salt`` and ``digest`` = HMAC-SHA256 keyed with the salt over the whole
secret string, and :func:`matches` compares digests with :func:`hmac.compare_digest` (constant time).

Why a salted SHA-256 and not a slow password hash (bcrypt, scrypt, Argon2): a slow hash makes guessing a *weak*
secret from a stolen digest expensive; these secrets are 256 random bits, so there is nothing to guess, and
brute force is not the threat it guards against (GitHub and Stripe store their tokens this way). The query path
checks a key on every request, and a slow hash would cost it milliseconds there; HMAC-SHA256 costs about a
microsecond. The salt keeps equal secrets (there are none, but a test may make some) from having equal digests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from clipper_core.state.records import ApiKey
from clipper_core.tenancy.limits import KeyLimits

__all__ = ["KEY_ID_LENGTH", "PREFIX", "SECRET_LENGTH", "ApiKey", "digest", "matches", "new_key", "parse_key_id"]

PREFIX = "clk_"
KEY_ID_LENGTH = 12
"""Hex characters of a key id."""
_SECRET_BYTES = 32
SECRET_LENGTH = len(PREFIX) + KEY_ID_LENGTH + 1 + len(secrets.token_urlsafe(_SECRET_BYTES))
"""Characters of a whole secret (60)."""
_SECRET = re.compile(rf"{PREFIX}([0-9a-f]{{{KEY_ID_LENGTH}}})_[A-Za-z0-9_-]+")


def digest(salt: str, secret: str) -> str:
    """HMAC-SHA256 keyed with ``salt`` (hex) over ``secret``, as hex."""
    message = secret.encode("utf-8", "surrogatepass")  # whatever a header held: a wrong key, never an error
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).hexdigest()


def new_key(app_name: str, label: str = "", limits: KeyLimits | None = None, *,
            created_at: float | None = None) -> tuple[ApiKey, str]:
    """A new key of ``app_name``: its record (to store) and its secret (to show once, never to store).

    :param label: what the key is for (shown in listings)
    :param limits: the key's own limits (validated already, e.g. by :meth:`KeyLimits.from_json`); None or
        unlimited: only the app's limits apply
    :param created_at: when (``time.time()`` unless given)
    """
    key_id = secrets.token_hex(KEY_ID_LENGTH // 2)
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    salt = secrets.token_bytes(16).hex()
    stored = None if limits is None or limits.unlimited else limits.to_json()
    record = ApiKey(key_id=key_id, app_name=app_name, label=label, salt=salt, digest=digest(salt, secret),
                    created_at=time.time() if created_at is None else created_at, limits=stored)
    return record, secret


def parse_key_id(secret: str) -> str | None:
    """The key id of a secret of the form ``clk_<key_id>_<secret>``; None for anything else (no record to look
    up: the caller answers 401 without touching the store)."""
    if not isinstance(secret, str) or len(secret) != SECRET_LENGTH:
        return None
    match = _SECRET.fullmatch(secret)
    return None if match is None else match.group(1)


def matches(record: ApiKey, secret: str) -> bool:
    """Whether ``secret`` is the key ``record`` was made with (digests compared in constant time)."""
    return hmac.compare_digest(digest(record.salt, secret), record.digest)
