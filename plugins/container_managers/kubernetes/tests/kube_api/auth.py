"""Authentication: who a request comes from (:class:`UserInfo`), the service-account tokens the emulator issues
(:class:`TokenIssuer`: JWT-shaped, HS256-signed with a per-server key, bound to the ServiceAccount's uid) and the
record of each request with its user and answer (:class:`AuditEvent`).

Users: the admin token (``KubeApiEmulator.token``) is the user ``KubeApiEmulator.user`` in ``system:masters``; a
service-account token is ``system:serviceaccount:<ns>:<name>`` in ``system:serviceaccounts``,
``system:serviceaccounts:<ns>`` and ``system:authenticated``, as the real ServiceAccount token authenticator says.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
import uuid

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """An authenticated user: its name and groups; ``admin`` is the admin token's user (RBAC is not consulted)."""

    name: str
    groups: tuple[str, ...]
    admin: bool = False

    @classmethod
    def service_account(cls, namespace: str, name: str) -> UserInfo:
        return cls(service_account_user(namespace, name),
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))

    @classmethod
    def administrator(cls, name: str) -> UserInfo:
        return cls(name, ("system:masters", "system:authenticated"), admin=True)


def service_account_user(namespace: str, name: str) -> str:
    """``system:serviceaccount:<namespace>:<name>``, the user name of a service account's token."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclasses.dataclass(frozen=True)
class TokenClaims:
    """What a verified service-account token says: the ServiceAccount's namespace, name and uid."""

    namespace: str
    name: str
    uid: str


class TokenIssuer:
    """Issues and verifies service-account tokens. Thread-safe (its key never changes); no state per token.

    A token looks like the real ones (a JWT with the ``kubernetes.io`` claims, sub ``system:serviceaccount:ns:sa``)
    but is signed HS256 with this server's random key instead of RS256, has no expiry and no audience check: it is
    valid for as long as the ServiceAccount with that uid exists (the caller checks that)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, namespace: str, name: str, uid: str) -> str:
        now = int(time.time())
        header = {"alg": "HS256", "kid": "kube-api-emulator", "typ": "JWT"}
        claims = {"iss": ISSUER, "aud": [ISSUER], "sub": service_account_user(namespace, name), "iat": now,
                  "nbf": now, "jti": str(uuid.uuid4()),
                  "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}}
        signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        return f"{signed}.{_b64(self._sign(signed))}"

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a token this issuer signed, or None (malformed, or another key's)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _unb64(parts[2])
            if not hmac.compare_digest(signature, self._sign(f"{parts[0]}.{parts[1]}")):
                return None
            claims = json.loads(_unb64(parts[1]))
            info = claims["kubernetes.io"]
            return TokenClaims(str(info["namespace"]), str(info["serviceaccount"]["name"]),
                               str(info["serviceaccount"]["uid"]))
        except (ValueError, KeyError, TypeError):
            return None

    def _sign(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode(), hashlib.sha256).digest()


@dataclasses.dataclass
class AuditEvent:
    """One request as the server saw it: who (``""`` if it did not authenticate), what, and the answer's code.

    ``verb`` is the RBAC verb (get, list, watch, create, update, patch, delete, deletecollection) of a resource
    request, or the lower-case HTTP method of a non-resource one (``resource`` is then ``""``); ``resource`` is
    ``plural`` or ``plural/subresource`` (``deployments/scale``, ``pods/log``); ``code`` is the HTTP status (0 while
    the answer is not started; a watch is 200 from its first byte)."""

    user: str
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    group: str
    path: str
    code: int = 0
