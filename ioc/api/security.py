"""Bearer tokens and login throttling.

Tokens are compact JWS (HS256) with OIDC-style claims (``iss``, ``aud``, ``sub``,
``role``, ``iat``, ``exp``, ``jti``) and the user's token generation (``gen``), signed with
``IOC_AUTH_SECRET``; a deployment fronted by an OIDC provider can issue the same claims. The
standard library's ``hmac`` is all HS256 needs, so no JWT dependency. Passwords never leave
``ioc.storage.users`` except as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = [
    "AUDIENCE",
    "CLOCK_LEEWAY_S",
    "ISSUER",
    "InvalidTokenError",
    "LoginThrottle",
    "Principal",
    "issue_token",
    "verify_token",
]

ISSUER = "ioc-stream"
AUDIENCE = "ioc-api"
_HEADER = {"alg": "HS256", "typ": "JWT"}
CLOCK_LEEWAY_S = 30  # clock skew tolerated on iat (against this process's clock and the database's)


class InvalidTokenError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a username and one of the five roles; ``issued`` and ``expires`` are the
    Unix times their token was issued and stops holding (None where no token is involved), and
    ``generation`` the user's token generation it was issued in (None in a token without one:
    issued before generations, or by another issuer; :class:`ioc.api.accounts.UserDirectory`), and
    ``token_id`` its ``jti``, ``session_id`` its session's (``sid``: every token renewed from a
    sign-in's carries it, and signing out records it; a token without one is a session of its
    own), and ``signed_in`` when the session began (``auth_time``, kept by renewals)."""

    username: str
    role: str
    expires: float | None = field(default=None, compare=False)
    issued: float | None = field(default=None, compare=False)
    generation: int | None = field(default=None, compare=False)
    token_id: str | None = field(default=None, compare=False)
    signed_in: float | None = field(default=None, compare=False)
    session_id: str | None = field(default=None, compare=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()


def issue_token(principal: Principal, *, secret: str, ttl_s: int, now: float | None = None) -> str:
    """A signed token valid for ``ttl_s`` seconds."""
    issued = int(now if now is not None else time.time())
    token_id = secrets.token_urlsafe(8)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": principal.username, "role": principal.role,
              "iat": issued, "exp": issued + ttl_s, "jti": token_id, "sid": principal.session_id or token_id,
              "auth_time": int(principal.signed_in) if principal.signed_in is not None else issued}
    if principal.generation is not None:
        claims["gen"] = principal.generation
    header = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}"
    return f"{signing_input}.{_b64(_sign(signing_input, secret))}"


def verify_token(token: str, *, secret: str, now: float | None = None) -> Principal:
    """The token's principal; :class:`InvalidTokenError` unless signature and claims check out."""
    moment = now if now is not None else time.time()
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        if not hmac.compare_digest(_sign(f"{header_b64}.{claims_b64}", secret), _unb64(signature_b64)):
            raise InvalidTokenError("bad signature")
        if json.loads(_unb64(header_b64)).get("alg") != "HS256":
            raise InvalidTokenError("unsupported algorithm")
        claims = json.loads(_unb64(claims_b64))
        subject, role = str(claims["sub"]), str(claims["role"])
        expires, issued = float(claims["exp"]), float(claims.get("iat", 0))
        generation = None if claims.get("gen") is None else int(claims["gen"])
        token_id = None if claims.get("jti") is None else str(claims["jti"])
        signed_in = float(claims.get("auth_time", issued))
        session_id = None if claims.get("sid", token_id) is None else str(claims.get("sid", token_id))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidTokenError("malformed token") from exc
    if claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE:
        raise InvalidTokenError("wrong issuer or audience")
    if expires <= moment:
        raise InvalidTokenError("token expired")
    if issued > moment + CLOCK_LEEWAY_S:
        raise InvalidTokenError("token issued in the future")
    return Principal(subject, role, expires, issued, generation, token_id, signed_in, session_id)


class LoginThrottle:
    """At most ``max_failures`` failed logins per (username, client) in ``window_s``.

    Keyed by both so one attacker cannot lock a user out from every address, and
    bounded (``max_keys``, oldest evicted) so random usernames cannot fill memory.
    """

    def __init__(self, *, max_failures: int = 5, window_s: float = 900.0, max_keys: int = 100_000) -> None:
        self._max, self._window, self._max_keys = max_failures, window_s, max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] > self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, username: str, client: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        now = now if now is not None else time.monotonic()
        failures = self._recent((username.lower(), client), now)
        if len(failures) < self._max:
            return 0.0
        return max(0.0, self._window - (now - failures[0]))

    def failed(self, username: str, client: str, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        key = (username.lower(), client)
        self._recent(key, now)
        failures = self._failures.setdefault(key, deque(maxlen=self._max))
        failures.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username.lower(), client), None)
