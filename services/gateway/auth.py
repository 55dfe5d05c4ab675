"""Who is calling, and may they: signed tokens, the access rules, the login rate limit.

Pure (no I/O, no clock reads: ``now`` is passed in), so the rules are unit-tested alone.

Tokens (会话令牌) are JWTs signed with HS256 (joserfc) under the key ``GATEWAY_TOKEN_KEY``
(config or environment; never in the repository). They live ``GATEWAY_TOKEN_TTL`` seconds
(default 900: 15 minutes) and carry the role claims the gateway decides by: ``sub`` (the
account id), ``role``, and for registration-point staff ``rp`` (their point). The gateway
keeps no session table: a token is valid until it expires, on every replica that shares
the key.

Roles (DESIGN §6): ``candidate`` (考生: their own records only), ``staff``
(报名点工作人员: manual checks and enquiries of their own point), ``authority``
(考试机构: timetable, spot checks, scores, certificates, exam day), ``operator`` (运维:
status, event logs, the dashboard).
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey

from services.gateway.errors import ApiError

ROLES = ("candidate", "staff", "authority", "operator")
ISSUER = "kaowu-gateway"
AUDIENCE = "kaowu"
ALGORITHM = "HS256"
DEFAULT_TTL = 900  # seconds
MIN_KEY_BYTES = 32  # HS256 wants a key at least as long as its hash


# --------------------------------------------------------------------------- principals


@dataclass(frozen=True)
class Principal:
    """The signed-in caller, as the token says."""

    account_id: str
    role: str
    name: str
    username: str
    registration_point: str | None
    expires_at: int  # seconds since the epoch

    @property
    def actor(self) -> str:
        """Who acts, for the events' metadata (``role:account_id``)."""
        return f"{self.role}:{self.account_id}"

    def staff(self) -> dict:
        """The acting registration-point staff member, as the services take it."""
        return {"staff_id": self.account_id, "registration_point": self.registration_point}

    def authority(self) -> dict:
        return {"staff_id": self.account_id}

    def public(self) -> dict:
        return {"account_id": self.account_id, "role": self.role, "name": self.name,
                "username": self.username, "registration_point": self.registration_point,
                "expires_at": self.expires_at}


# --------------------------------------------------------------------------- tokens


class TokenError(Exception):
    """A token that does not admit anyone: ``reason`` is ``expired`` or ``invalid``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Tokens:
    """Issues and checks the gateway's tokens."""

    def __init__(self, key: bytes, ttl: int = DEFAULT_TTL, generated: bool = False):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"GATEWAY_TOKEN_KEY must be at least {MIN_KEY_BYTES} bytes long")
        if ttl <= 0:
            raise ValueError("GATEWAY_TOKEN_TTL must be a positive number of seconds")
        self._key = OctKey.import_key(key)
        self.ttl = int(ttl)
        self.generated = generated  # a random key made at start: tokens die with the process

    @classmethod
    def from_settings(cls, key: str | bytes | None, ttl=None) -> Tokens:
        """From ``GATEWAY_TOKEN_KEY`` (a secret string of at least 32 bytes); with none, a
        random key for this process (``make run`` with nothing set)."""
        ttl = int(ttl) if ttl not in (None, "") else DEFAULT_TTL
        if not key:
            return cls(secrets.token_bytes(MIN_KEY_BYTES), ttl, generated=True)
        return cls(key.encode() if isinstance(key, str) else key, ttl)

    def issue(self, login: dict, now: datetime) -> tuple[str, int]:
        """A token for the answer of ``account.login``; returns ``(token, expires_at)``."""
        role = login.get("role") or "candidate"
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if role == "staff" and not login.get("registration_point"):
            raise ValueError("a staff token needs the staff member's registration point")
        iat = int(now.timestamp())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": login["account_id"], "role": role,
                  "name": login.get("name") or "", "username": login.get("username") or "",
                  "iat": iat, "exp": iat + self.ttl, "jti": uuid.uuid4().hex}
        if role == "staff":
            claims["rp"] = login["registration_point"]
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, self._key), iat + self.ttl

    def verify(self, token: str, now: datetime) -> Principal:
        """The principal a token names; ``TokenError`` if it is not good now."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise TokenError("invalid")
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            registry = jwt.JWTClaimsRegistry(
                now=int(now.timestamp()), leeway=0,
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "value": AUDIENCE},
                sub={"essential": True},
                exp={"essential": True},
                role={"essential": True, "values": list(ROLES)})
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise TokenError("expired") from None
        except (JoseError, ValueError, TypeError, KeyError):
            raise TokenError("invalid") from None
        c = decoded.claims
        if c["role"] == "staff" and not c.get("rp"):
            raise TokenError("invalid")
        return Principal(account_id=str(c["sub"]), role=c["role"], name=str(c.get("name", "")),
                         username=str(c.get("username", "")),
                         registration_point=c.get("rp") if c["role"] == "staff" else None,
                         expires_at=int(c["exp"]))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# --------------------------------------------------------------------------- access rules


@dataclass(frozen=True)
class Access:
    """Who may call a route: ``roles`` None means anyone (no token needed)."""

    name: str
    roles: frozenset | None
    description: str

    @property
    def public(self) -> bool:
        return self.roles is None


PUBLIC = Access("public", None, "anyone, no token")
SIGNED_IN = Access("signed_in", frozenset(ROLES), "anyone signed in")
CANDIDATE = Access("candidate", frozenset({"candidate"}), "candidates (their own records)")
STAFF = Access("staff", frozenset({"staff"}), "registration-point staff (their own point)")
AUTHORITY = Access("authority", frozenset({"authority"}), "the exam authority")
OPERATOR = Access("operator", frozenset({"operator"}), "operators")
OVERSIGHT = Access("oversight", frozenset({"operator", "authority"}),
                   "operators and the exam authority")


def authorize(access: Access, token: str | None, tokens: Tokens, now: datetime) -> Principal | None:
    """The caller if ``access`` admits them; ``ApiError`` 401 (no or bad token) or 403
    (a good token of a role this route is not for). Public routes ignore tokens."""
    if access.public:
        return None
    if token is None:
        raise ApiError("unauthorized", "Sign in first: this needs a bearer token "
                       "(POST /api/login).", headers={"WWW-Authenticate": 'Bearer realm="kaowu"'})
    try:
        principal = tokens.verify(token, now)
    except TokenError as exc:
        message = ("Your sign-in has expired; sign in again." if exc.reason == "expired"
                   else "The token is not valid; sign in again.")
        raise ApiError("unauthorized", message, headers={
            "WWW-Authenticate": f'Bearer realm="kaowu", error="invalid_token", '
                                f'error_description="{exc.reason}"'}) from None
    if principal.role not in access.roles:
        raise ApiError("forbidden", f"This is for {access.description}; you are signed in as "
                       f"{principal.role}.")
    return principal


# --------------------------------------------------------------------------- rate limit


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted=()) -> str:
    """The client's address for the per-address limit. Behind a proxy (the ingress) every
    request comes from the proxy, so ``X-Forwarded-For`` is read, but only when the direct
    peer is a trusted proxy (``GATEWAY_TRUSTED_PROXIES``: addresses or networks), and then
    from the right: the first address not itself a trusted proxy is the client (anything
    further left is what the client claimed)."""
    peer = remote_addr or "unknown"
    if not trusted or not forwarded_for or not _within(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _within(hop, trusted):
            return hop
    return peer


def trusted_networks(setting) -> tuple:
    """``GATEWAY_TRUSTED_PROXIES`` (a list, or a comma-separated string) as networks."""
    if not setting:
        return ()
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    return tuple(ipaddress.ip_network(str(i).strip(), strict=False) for i in items if str(i).strip())


def _within(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


class LoginLimiter:
    """Failed logins per username and per client address in a sliding window: beyond the
    limit, logins are answered 429 with ``Retry-After`` until the oldest failure ages out.

    In memory, per gateway process (replicas each count their own; the account service's
    lockout, 5 failures → 15 minutes, holds across all of them). Bounded: the least
    recently failing keys are forgotten first beyond ``max_keys``.
    """

    def __init__(self, per_username: int = 5, per_address: int = 20, window: float = 60.0,
                 max_keys: int = 100_000):
        self.limits = {"username": per_username, "address": per_address}
        self.window = float(window)
        self.max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque] = OrderedDict()

    @staticmethod
    def username_key(username) -> str:
        return str(username or "").strip().lower()[:64]

    def retry_after(self, username, address: str, now: float) -> int:
        """Seconds until a login may be tried again (0: go ahead)."""
        wait = 0.0
        for kind, value in (("username", self.username_key(username)), ("address", address)):
            times = self._recent((kind, value), now)
            if times is not None and len(times) >= self.limits[kind]:
                wait = max(wait, times[len(times) - self.limits[kind]] + self.window - now)
        return max(int(wait + 0.999), 1) if wait > 0 else 0

    def check(self, username, address: str, now: float):
        wait = self.retry_after(username, address, now)
        if wait:
            raise ApiError("rate_limited", f"Too many failed logins; try again in {wait} s.",
                           headers={"Retry-After": str(wait)})

    def failed(self, username, address: str, now: float):
        for key in (("username", self.username_key(username)), ("address", address)):
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque()
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username):
        """A right password clears the username's count (not the address's: one account
        of one's own must not buy more guesses at others)."""
        self._failures.pop(("username", self.username_key(username)), None)

    def _recent(self, key, now: float):
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
