"""Many teams on one clipper, as the query path applies it (docs/tenancy.md): who may query an application (its
API keys), how much (token buckets for requests/s and inputs/s, a cap on concurrent queries, per application and
per key), what is too large (input limits) and in what order its work is batched and refused (its priority class).

The snapshot gives an application a :class:`Guard` (``AppRuntime.guard``) when it has any of these — keys
required or issued, limits, a priority other than ``normal`` — and None otherwise: such an app costs a query
one attribute test. A guard's :meth:`Guard.enter` runs before anything is queued; what it lets in leaves through
:meth:`Admitted.leave` when the query ends.

Limits hold per frontend. With several frontends over a shared store, each applies its **share** of every limit:
its part of the demand (requests/s offered, refused ones included) that the frontends' load reports show,
smoothed by one request/s each (:func:`demand_shares`) so that the shares add up to 1 and an idle frontend keeps a
little. A shift of traffic between frontends is followed within a report (about 1 s).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper_core.errors import Forbidden, InvalidInput, PayloadTooLarge, RateLimited, Unauthorized
from clipper_core.state import ApiKey, Application
from clipper_core.tenancy.keys import matches, parse_key_id
from clipper_core.tenancy.limits import AppLimits, KeyLimits

__all__ = ["ADMISSION_SHARE", "RANK_OFFSET", "Guard", "KeyTable", "Quota", "QuotaRegistry",
           "TokenBucket", "demand_shares", "presented_key", "scope_key"]

RANK_OFFSET = {"high": -1e6, "normal": 0.0, "low": 1e6}
"""Added to a task's deadline to order its queue (``Task.rank``): every queued task of a higher class goes to a
batch before any of a lower one; within a class, earliest deadline first. A low-class query waits at most its
SLO (then it gets the default output) and is served whenever the higher classes leave room."""
ADMISSION_SHARE = {"high": 1.0, "normal": 1.0, "low": 0.5}
"""The share of the admission limits (predicted wait, queue length) a class may use: under overload ``low`` is
refused (503) first; ``high`` may also use the SLO's last tenth that admission keeps back for the others."""


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The API key a request presents: ``X-API-Key: <key>``, or ``Authorization: Bearer <key>``."""
    if api_key:
        return api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            return value.strip()
    return None


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; starts full."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def wait(self, n: float, now: float) -> float:
        """Seconds until ``n`` tokens are there (0.0: now); ``math.inf`` when ``n`` exceeds the burst."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if n <= self.tokens:
            return 0.0
        if n > self.burst:
            return math.inf
        return (n - self.tokens) / self.rate

    def rescale(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)


class Quota:
    """One application's or one key's rate limits and concurrency cap, as this frontend applies them (its
    :attr:`share` of each), with what it admitted and refused (``/metrics``)."""

    def __init__(self, app: str, key_id: str, limits: KeyLimits, clock: Callable[[], float]) -> None:
        self.app = app
        self.key_id = key_id
        """The key's id; ``""`` for the application's own quota."""
        limits = limits.normalised()  # a burst left out: one second's worth
        self.limits = limits
        self.clock = clock
        self.share = 1.0
        now = clock()
        self.requests = (TokenBucket(limits.requests_per_second, float(limits.requests_burst or 1), now)
                         if limits.requests_per_second else None)
        self.inputs = (TokenBucket(limits.inputs_per_second, float(limits.inputs_burst or 1), now)
                       if limits.inputs_per_second else None)
        self.cap = limits.max_concurrent
        self.local_cap = limits.max_concurrent
        """This frontend's part of ``cap`` (its share; at least 1)."""
        self.active = 0
        self.offered = 0
        """Requests that asked (admitted or refused): the demand a load report publishes."""
        self.admitted = 0
        self.refused: dict[str, int] = {}

    @property
    def scope(self) -> str:
        return "api_key" if self.key_id else "application"

    def _whose(self) -> str:
        return f"API key '{self.key_id}' of application '{self.app}'" if self.key_id else \
            f"application '{self.app}'"

    def check(self, n: int, now: float) -> None:
        """Raise :class:`RateLimited` unless a request of ``n`` inputs fits now (nothing is taken yet)."""
        self.offered += 1
        if self.local_cap is not None and self.active >= self.local_cap:
            self._refuse("max_concurrent", f"{self._whose()} has {self.active} queries running, its limit "
                         f"max_concurrent is {self.cap}" + self._shared(), 1.0)
        if self.requests is not None:
            wait = self.requests.wait(1, now)
            if wait:
                self._refuse("requests_per_second", f"{self._whose()} is over its limit requests_per_second = "
                             f"{self.limits.requests_per_second:g} (burst {self.limits.requests_burst})"
                             + self._shared(), wait)
        if self.inputs is not None:
            wait = self.inputs.wait(n, now)
            if wait == math.inf:
                self._refuse("inputs_burst", f"a request of {n} inputs exceeds {self._whose()}'s inputs_burst "
                             f"({self.limits.inputs_burst}{self._shared()}); send at most that many at once",
                             1.0)
            if wait:
                self._refuse("inputs_per_second", f"{self._whose()} is over its limit inputs_per_second = "
                             f"{self.limits.inputs_per_second:g} (burst {self.limits.inputs_burst})"
                             + self._shared(), wait)

    def take(self, n: int) -> None:
        """Take what :meth:`check` found available, and count the query as running."""
        if self.requests is not None:
            self.requests.tokens -= 1
        if self.inputs is not None:
            self.inputs.tokens -= n
        self.active += 1
        self.admitted += 1

    def _shared(self) -> str:
        return "" if self.share >= 1.0 else f"; this frontend applies {self.share:.0%} of it, its share of the " \
                                            "demand across frontends"

    def _refuse(self, limit: str, message: str, retry_after: float) -> None:
        self.refused[limit] = self.refused.get(limit, 0) + 1
        raise RateLimited(message, limit=limit, scope=self.scope, retry_after=retry_after)

    def set_share(self, share: float) -> None:
        """Apply ``share`` (0–1] of every limit on this frontend."""
        share = min(1.0, max(share, 1e-3))
        self.share = share
        limits = self.limits
        if self.cap is not None:
            self.local_cap = max(1, round(self.cap * share))
        if self.requests is not None and limits.requests_per_second:
            self.requests.rescale(limits.requests_per_second * share, max(1.0, (limits.requests_burst or 1) * share))
        if self.inputs is not None and limits.inputs_per_second:
            self.inputs.rescale(limits.inputs_per_second * share, max(1.0, (limits.inputs_burst or 1) * share))


@dataclass
class Refusals:
    """Queries refused for their key, over the snapshot's rebuilds (``/metrics``)."""

    invalid: int = 0
    """401: a malformed, unknown or revoked key."""
    other_app: int = 0
    """403: a key of another application."""
    missing: dict[str, int] = field(default_factory=dict)
    """App -> 401s for no key where one is required."""


class KeyTable:
    """Every API key the store holds, by key id, and the secrets already checked (a hit skips the HMAC)."""

    def __init__(self, keys: Iterable[ApiKey], refusals: Refusals | None = None) -> None:
        self.by_id = {key.key_id: key for key in keys}
        self._by_app: dict[str, list[ApiKey]] = {}
        for key in self.by_id.values():
            self._by_app.setdefault(key.app_name, []).append(key)
        self._checked: dict[str, ApiKey] = {}
        """Secret -> its record, for secrets that matched (bounded by the number of keys)."""
        self.refusals = refusals if refusals is not None else Refusals()

    def of_app(self, app: str) -> list[ApiKey]:
        return self._by_app.get(app, [])

    def authenticate(self, app: str, secret: str) -> ApiKey:
        """The record of a presented key of ``app``; 401 for a malformed, unknown or revoked key, 403 for a key
        of another application."""
        record = self._checked.get(secret)
        if record is None:
            key_id = parse_key_id(secret)
            candidate = self.by_id.get(key_id) if key_id is not None else None
            if candidate is None or not matches(candidate, secret):
                self.refusals.invalid += 1
                raise Unauthorized("the API key is not valid (malformed, unknown or revoked); expected a key "
                                   f"created for application '{app}' ('clipper keys create {app}')",
                                   headers={"WWW-Authenticate": 'Bearer realm="clipper"'})
            record = self._checked[secret] = candidate
        if record.app_name != app:
            self.refusals.other_app += 1
            raise Forbidden(f"API key '{record.key_id}' is for application '{record.app_name}', not '{app}'")
        return record


@dataclass
class Guard:
    """What an application asks of its queries (see the module)."""

    app: str
    require_key: bool
    priority: str
    limits: AppLimits
    quota: Quota | None
    """The app's own rate limits and cap (None: none)."""
    keys: KeyTable
    key_quotas: dict[str, Quota]
    """Key id -> its own quota, for the keys with limits."""
    rank_offset: float = 0.0
    admission_share: float = 1.0

    def __post_init__(self) -> None:
        self.checks_inputs = self.limits.max_batch_size is not None or self.limits.max_input_length is not None
        self.max_body = self.limits.max_body_bytes

    @classmethod
    def of(cls, app: Application, keys: KeyTable, quotas: QuotaRegistry) -> Guard | None:
        """The app's guard, None when it asks nothing of its queries. Quotas whose limits did not change keep
        their state (tokens, running queries) across snapshot rebuilds."""
        limits = AppLimits.stored(app.limits)
        own_keys = keys.of_app(app.name)
        if not app.require_api_key and app.priority == "normal" and limits.unlimited and not own_keys:
            return None
        quota_limits = KeyLimits(limits.requests_per_second, limits.requests_burst, limits.inputs_per_second,
                                 limits.inputs_burst, limits.max_concurrent)
        key_quotas = {key.key_id: quotas.get(app.name, key.key_id, KeyLimits.stored(key.limits))
                      for key in own_keys if key.limits}
        return cls(app.name, app.require_api_key, app.priority, limits,
                   None if quota_limits.unlimited else quotas.get(app.name, "", quota_limits), keys, key_quotas,
                   RANK_OFFSET.get(app.priority, 0.0), ADMISSION_SHARE.get(app.priority, 1.0))

    def enter(self, key: str | ApiKey | None, items: list[Any]) -> tuple[Quota, ...]:
        """Check a query of ``items`` presenting ``key`` (a secret, or the record :meth:`precheck` found; None:
        none): authentication (401/403), input limits (413/400), then every quota (429, nothing taken unless all
        admit it). The quotas it entered: the caller lowers each one's ``active`` when the query ends."""
        if key.__class__ is str:
            key = self.keys.authenticate(self.app, key)
        elif key is None and self.require_key:
            self._missing_key()
        n = len(items)
        if self.checks_inputs:
            self._check_inputs(items)
        quota = self.quota
        key_quota = self.key_quotas.get(key.key_id) if key is not None and self.key_quotas else None  # type: ignore[union-attr]
        if key_quota is None:
            if quota is None:
                return ()
            quota.check(n, quota.clock())
            quota.take(n)
            return (quota,)
        quotas = (key_quota,) if quota is None else (quota, key_quota)
        now = key_quota.clock()
        for q in quotas:
            q.check(n, now)
        for q in quotas:
            q.take(n)
        return quotas

    def _check_inputs(self, items: list[Any]) -> None:
        limits = self.limits
        n = len(items)
        if limits.max_batch_size is not None and n > limits.max_batch_size:
            raise PayloadTooLarge(f"the request has {n} inputs; application '{self.app}' takes at most "
                                  f"max_batch_size = {limits.max_batch_size} a request")
        if limits.max_input_length is not None:
            most = limits.max_input_length
            for i, item in enumerate(items):
                if len(item) > most:
                    raise InvalidInput(f"input {i} has length {len(item)}; application '{self.app}' takes inputs "
                                       f"of at most max_input_length = {most} (elements, or bytes)")

    def precheck(self, secret: str | None, body_size: int | None) -> ApiKey | None:
        """What an adapter checks before it reads a request: its key (401/403) and its body size (413). The
        key's record, for :meth:`enter`."""
        key = None
        if secret is not None:
            key = self.keys.authenticate(self.app, secret)
        elif self.require_key:
            self._missing_key()
        if self.max_body is not None and body_size is not None:
            self.check_body(body_size)
        return key

    def _missing_key(self) -> None:
        missing = self.keys.refusals.missing
        missing[self.app] = missing.get(self.app, 0) + 1
        raise Unauthorized(f"application '{self.app}' requires an API key; send 'Authorization: Bearer <key>' or "
                           "'X-API-Key: <key>'", headers={"WWW-Authenticate": 'Bearer realm="clipper"'})

    def check_body(self, size: int | None) -> None:
        """413 when a request body of ``size`` bytes (None: not known before reading it) is over
        ``max_body_bytes``."""
        most = self.limits.max_body_bytes
        if most is not None and size is not None and size > most:
            raise PayloadTooLarge(f"the request body has {size} bytes; application '{self.app}' takes at most "
                                  f"max_body_bytes = {most}")

    def quotas(self) -> list[Quota]:
        return ([self.quota] if self.quota is not None else []) + list(self.key_quotas.values())


class QuotaRegistry:
    """The quotas of every app and key, kept across snapshot rebuilds while their limits stay the same."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._quotas: dict[tuple[str, str], Quota] = {}
        self._used: set[tuple[str, str]] = set()
        self.frontends = 1
        """Live query frontends (the registry's count, kept by the server): a new quota starts with an equal
        share, until the load reports tell the demand."""

    def get(self, app: str, key_id: str, limits: KeyLimits) -> Quota:
        found = self._quotas.get((app, key_id))
        limits = limits.normalised()
        if found is None or found.limits != limits:
            found = self._quotas[(app, key_id)] = Quota(app, key_id, limits, self.clock)
            if self.frontends > 1:
                found.set_share(1.0 / self.frontends)
        self._used.add((app, key_id))
        return found

    def retain_used(self) -> None:
        """Forget the quotas the last rebuild did not ask for (their app, key or limits are gone)."""
        self._quotas = {k: q for k, q in self._quotas.items() if k in self._used}
        self._used = set()

    def all(self) -> list[Quota]:
        return list(self._quotas.values())


def scope_key(quota: Quota) -> str:
    """A quota's key in a load report's tenancy figures: ``app`` or ``app/key_id``."""
    return f"{quota.app}/{quota.key_id}" if quota.key_id else quota.app


def demand_shares(mine: Mapping[str, float], everyone: Iterable[Mapping[str, float]],
                  frontends: int = 1) -> dict[str, float]:
    """Per scope of ``mine`` (this frontend's requests/s offered): its share of every frontend's demand
    (``everyone``, this frontend's report included), each frontend counted with one request/s more so that
    the shares add up to 1 and an idle frontend keeps a little. A scope no other report has yet gets an equal
    share of the ``frontends`` live ones."""
    reports = list(everyone)
    shares: dict[str, float] = {}
    for scope, demand in mine.items():
        demands = [r[scope] for r in reports if scope in r]
        if len(demands) <= 1:
            shares[scope] = 1.0 / max(1, frontends)
            continue
        shares[scope] = (demand + 1.0) / (sum(demands) + len(demands))
    return shares
