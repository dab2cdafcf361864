"""Bearer tokens and login throttling.

Tokens are compact JWS (HS256) with OIDC-style claims (``iss``, ``sub``, ``role``,
``iat``, ``exp``), signed with ``IOC_AUTH_SECRET``; a deployment fronted by an
OIDC provider can issue the same claims. Passwords never leave
``ioc.storage.users`` except as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass

ISSUER = "ioc-stream"
_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidTokenError(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    username: str
    role: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(principal: Principal, *, secret: str, ttl_s: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"iss": ISSUER, "sub": principal.username, "role": principal.role,
              "iat": issued, "exp": issued + ttl_s}
    signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify_token(token: str, *, secret: str, now: float | None = None) -> Principal:
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        expected = hmac.new(secret.encode(), f"{header_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature_b64)):
            raise InvalidTokenError("bad signature")
        if json.loads(_unb64(header_b64)).get("alg") != "HS256":
            raise InvalidTokenError("unsupported algorithm")
        claims = json.loads(_unb64(claims_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidTokenError("malformed token") from exc
    if claims.get("iss") != ISSUER:
        raise InvalidTokenError("wrong issuer")
    if claims.get("exp", 0) <= (now if now is not None else time.time()):
        raise InvalidTokenError("token expired")
    return Principal(str(claims["sub"]), str(claims["role"]))


class LoginThrottle:
    """At most ``max_failures`` failed logins per (username, client) in ``window_s``."""

    def __init__(self, *, max_failures: int = 5, window_s: float = 900.0) -> None:
        self._max, self._window = max_failures, window_s
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] > self._window:
            failures.popleft()
        return failures

    def retry_after(self, username: str, client: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        now = now if now is not None else time.monotonic()
        failures = self._recent((username, client), now)
        if len(failures) < self._max:
            return 0.0
        return max(0.0, self._window - (now - failures[0]))

    def failed(self, username: str, client: str, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        self._recent((username, client), now).append(now)

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username, client), None)
