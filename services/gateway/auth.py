"""Who is calling, and may they: signed tokens, the access rules, the rate limits.

Pure (no I/O, no clock reads: ``now`` is passed in), so the rules are unit-tested alone.

Tokens (会话令牌) are JWTs signed with HS256 (joserfc) under the key ``GATEWAY_TOKEN_KEY``
(config or environment; never in the repository). They live ``GATEWAY_TOKEN_TTL`` seconds
(default 900: 15 minutes) and carry the role claims the gateway decides by: ``sub`` (the
account id), ``role``, for registration-point staff ``rp`` (their point), and
``auth_time`` (the sign-in, kept by renewals). The gateway keeps no session table: a token
is valid until it expires, on every replica that shares the key, unless the account's
password changed after ``auth_time`` (``revoked``; the edge asks the account service,
cached per account: services/gateway/README.md).

Roles (DESIGN §6): ``candidate`` (考生: their own records only), ``staff``
(报名点工作人员: manual checks and enquiries of their own point), ``authority``
(考试机构: timetable, spot checks, scores, certificates, exam day), ``operator`` (运维:
status, event logs, the dashboard).
"""

from __future__ import annotations

import ipaddress
import math
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
    signed_in_at: float = 0.0  # when the password was given (kept by renewals), POSIX s

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

    def __init__(self, key: bytes, ttl: int = DEFAULT_TTL, development: bool = False):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"GATEWAY_TOKEN_KEY must be at least {MIN_KEY_BYTES} bytes long")
        if ttl <= 0:
            raise ValueError("GATEWAY_TOKEN_TTL must be a positive number of seconds")
        self._key = OctKey.import_key(key)
        self.ttl = int(ttl)
        self.development = development  # the development key of shared.dev_secrets

    @classmethod
    def from_settings(cls, key: str | bytes, ttl=None, development: bool = False) -> Tokens:
        """From ``GATEWAY_TOKEN_KEY`` (a secret string of at least 32 bytes; the gateway
        loads it, or its development key, with ``shared.dev_secrets``)."""
        ttl = int(ttl) if ttl not in (None, "") else DEFAULT_TTL
        return cls(key.encode() if isinstance(key, str) else key, ttl, development)

    def issue(self, login: dict, now: datetime,
              signed_in_at: float | None = None) -> tuple[str, int]:
        """A token for the answer of ``account.login``; returns ``(token, expires_at)``.
        ``signed_in_at`` (claim ``auth_time``, to the millisecond: a password changed in
        the same second as a sign-in must still tell the two apart) is now, except for a
        renewal, which keeps the sign-in's."""
        role = login.get("role") or "candidate"
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if role == "staff" and not login.get("registration_point"):
            raise ValueError("a staff token needs the staff member's registration point")
        iat = int(now.timestamp())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": login["account_id"], "role": role,
                  "name": login.get("name") or "", "username": login.get("username") or "",
                  "iat": iat, "exp": iat + self.ttl, "jti": uuid.uuid4().hex,
                  "auth_time": (math.floor(now.timestamp() * 1000) / 1000
                                if signed_in_at is None else signed_in_at)}
        if role == "staff":
            claims["rp"] = login["registration_point"]
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, self._key), iat + self.ttl

    def renew(self, principal: Principal, now: datetime) -> tuple[str, int]:
        """A fresh token for a good one: the same claims and sign-in time, a new expiry."""
        return self.issue({"account_id": principal.account_id, "role": principal.role,
                           "name": principal.name, "username": principal.username,
                           "registration_point": principal.registration_point},
                          now, signed_in_at=principal.signed_in_at)

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
        signed_in_at = c.get("auth_time", c.get("iat"))
        if not isinstance(signed_in_at, int | float) or isinstance(signed_in_at, bool):
            raise TokenError("invalid")
        return Principal(account_id=str(c["sub"]), role=c["role"], name=str(c.get("name", "")),
                         username=str(c.get("username", "")),
                         registration_point=c.get("rp") if c["role"] == "staff" else None,
                         expires_at=int(c["exp"]), signed_in_at=float(signed_in_at))


def revoked(principal: Principal, credentials_changed_at: float | None) -> bool:
    """Whether the password changed after this sign-in (compared to the millisecond: a
    sign-in in the same millisecond as the change is taken to be after it)."""
    if credentials_changed_at is None:
        return False
    return round(principal.signed_in_at * 1000) < math.floor(credentials_changed_at * 1000)


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


class RateLimiter:
    """Hits per key in a sliding window, several kinds of key at once: a request is
    answered 429 with ``Retry-After`` while any of its keys has had ``limit`` hits within
    that kind's window, until the oldest of them ages out. One limiter for every limit the
    gateway keeps (logins, account creation, password resets); each use names its kinds.

    In memory, per gateway process (replicas each count their own). Bounded: the least
    recently hit keys are forgotten first beyond ``max_keys``.
    """

    def __init__(self, limits: dict[str, tuple[int, float]], max_keys: int = 100_000,
                 message: str = "Too many attempts"):
        self.limits = {kind: (int(n), float(window)) for kind, (n, window) in limits.items()}
        self.max_keys = max_keys
        self.message = message
        self._failures: OrderedDict[tuple[str, str], deque] = OrderedDict()

    def retry_after(self, keys: dict[str, str], now: float) -> int:
        """Seconds until a request with these keys may be tried again (0: go ahead)."""
        wait = 0.0
        for kind, value in keys.items():
            limit, window = self.limits[kind]
            times = self._recent((kind, value), window, now)
            if times is not None and len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + window - now)
        return max(int(wait + 0.999), 1) if wait > 0 else 0

    def check(self, keys: dict[str, str], now: float):
        wait = self.retry_after(keys, now)
        if wait:
            raise ApiError("rate_limited", f"{self.message}; try again in {wait} s. "
                           f"尝试次数过多，请{wait}秒后再试。",
                           headers={"Retry-After": str(wait)})

    def hit(self, keys: dict[str, str], now: float):
        for kind, value in keys.items():
            key = (kind, value)
            times = self._recent(key, self.limits[kind][1], now)
            if times is None:
                times = self._failures[key] = deque()
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def forget(self, kind: str, value: str):
        self._failures.pop((kind, value), None)

    def _recent(self, key, window: float, now: float):
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times


def identity_key(value) -> str:
    """An ID number or username as a limiter key (case and spaces do not count)."""
    return "".join(str(value or "").split()).upper()[:64]


def mobile_key(value) -> str:
    """A mobile as a limiter key: its last 11 digits (+86, 0086, spaces and hyphens, the
    ways of writing one number, count as one)."""
    digits = "".join(c for c in str(value or "")[:64] if c.isascii() and c.isdigit())
    return digits[-11:] if digits else identity_key(value)


class LoginLimiter(RateLimiter):
    """Failed logins, counted per (username, client address) pair and per address.

    The pair's count is the lockout (issue 17 item 10): 5 wrong passwords for a username
    from one address lock that pair for 15 minutes, whether or not the username exists
    (the answer is the same 429 for both), while the owner signing in from their own
    address is not affected. The per-address count (20 a minute) stops one address from
    trying many usernames. Why no lock per username alone: anyone could lock any known
    username by a few wrong passwords (a denial of service near a deadline).
    """

    def __init__(self, per_pair: int = 5, pair_window: float = 900.0, per_address: int = 20,
                 window: float = 60.0, max_keys: int = 100_000):
        super().__init__({"pair": (per_pair, pair_window), "address": (per_address, window)},
                         max_keys, message="Too many failed logins")

    @staticmethod
    def username_key(username) -> str:
        return str(username or "").strip().lower()[:64]

    def _keys(self, username, address: str) -> dict[str, str]:
        return {"pair": f"{self.username_key(username)}\x1f{address}", "address": address}

    def check(self, username, address: str, now: float):  # noqa: D102
        super().check(self._keys(username, address), now)

    def login_retry_after(self, username, address: str, now: float) -> int:
        return self.retry_after(self._keys(username, address), now)

    def failed(self, username, address: str, now: float):
        self.hit(self._keys(username, address), now)

    def succeeded(self, username, address: str):
        """A right password clears the pair's count (not the address's: one account of
        one's own must not buy more guesses at others)."""
        self.forget("pair", self._keys(username, address)["pair"])
