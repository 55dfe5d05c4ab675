"""The gateway's tokens, access rules and login rate limit (pure: no I/O, time passed in)."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import OctKey

from services.gateway.auth import (
    AUTHORITY,
    CANDIDATE,
    OPERATOR,
    OVERSIGHT,
    PUBLIC,
    SIGNED_IN,
    STAFF,
    LoginLimiter,
    RateLimiter,
    TokenError,
    Tokens,
    authorize,
    bearer_token,
    client_address,
    identity_key,
    mobile_key,
    revoked,
    trusted_networks,
)
from services.gateway.errors import ApiError

KEY = b"unit-test-key-0123456789abcdef-xyz"
NOW = datetime(2026, 4, 7, 2, 30, tzinfo=UTC)
CANDIDATE_LOGIN = {"account_id": "a1", "name": "张三", "username": "zhangsan",
                   "role": "candidate", "registration_point": None, "completeness": 100}
STAFF_LOGIN = {"account_id": "s1", "name": "李老师", "username": "point2916", "role": "staff",
               "registration_point": "2916"}


@pytest.fixture
def tokens():
    return Tokens(KEY, ttl=900)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _parts(token):
    header, payload, signature = token.split(".")
    pad = "=" * (-len(payload) % 4)
    return header, json.loads(base64.urlsafe_b64decode(payload + pad)), signature


# -------------------------------------------------------------------------- tokens


def test_issue_and_verify(tokens):
    token, expires_at = tokens.issue(CANDIDATE_LOGIN, NOW)
    assert expires_at == int(NOW.timestamp()) + 900
    who = tokens.verify(token, NOW + timedelta(minutes=14))
    assert (who.account_id, who.role, who.name, who.registration_point) == ("a1", "candidate",
                                                                            "张三", None)
    assert who.actor == "candidate:a1"
    staff = tokens.verify(tokens.issue(STAFF_LOGIN, NOW)[0], NOW)
    assert staff.staff() == {"staff_id": "s1", "registration_point": "2916"}
    assert staff.authority() == {"staff_id": "s1"}


def test_expired_at_the_second(tokens):
    token, expires_at = tokens.issue(CANDIDATE_LOGIN, NOW)
    tokens.verify(token, NOW + timedelta(seconds=899))
    for later in (timedelta(seconds=900), timedelta(seconds=901), timedelta(days=1)):
        with pytest.raises(TokenError) as exc:
            tokens.verify(token, NOW + later)
        assert exc.value.reason == "expired"


def test_tampered_payload_is_invalid(tokens):
    token, _ = tokens.issue(CANDIDATE_LOGIN, NOW)
    header, claims, signature = _parts(token)
    for change in ({"role": "operator"}, {"sub": "someone-else"}, {"exp": claims["exp"] + 3600}):
        forged = ".".join([header, _b64({**claims, **change}), signature])
        with pytest.raises(TokenError) as exc:
            tokens.verify(forged, NOW)
        assert exc.value.reason == "invalid"


def test_tampered_signature_other_key_and_alg_none(tokens):
    token, _ = tokens.issue(CANDIDATE_LOGIN, NOW)
    header, claims, signature = _parts(token)
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    bad = [".".join([header, _b64(claims), flipped]),
           Tokens(b"another-key-0123456789abcdef-xyz!").issue(CANDIDATE_LOGIN, NOW)[0],
           ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""]),
           "not-a-token", "", "a.b.c", "x" * 5000]
    for forged in bad:
        with pytest.raises(TokenError):
            tokens.verify(forged, NOW)


def test_a_role_no_one_has_is_refused_even_when_signed(tokens):
    """Signed with the right key (as a bug or a stolen key might), but not a role we know."""
    key = OctKey.import_key(KEY)
    iat = int(NOW.timestamp())
    base = {"iss": "kaowu-gateway", "aud": "kaowu", "sub": "a1", "iat": iat, "exp": iat + 60}
    for claims in ({**base, "role": "admin"}, {**base, "role": "staff"},  # staff without a point
                   {**base, "role": "candidate", "aud": "elsewhere"},
                   {**base, "role": "candidate", "iss": "someone"},
                   {k: v for k, v in {**base, "role": "candidate"}.items() if k != "exp"}):
        token = jwt.encode({"alg": "HS256"}, claims, key)
        with pytest.raises(TokenError):
            tokens.verify(token, NOW)
    # HS512 with the same key: not the algorithm we sign with
    token = jwt.encode({"alg": "HS512"}, {**base, "role": "candidate"}, key, algorithms=["HS512"])
    with pytest.raises(TokenError):
        tokens.verify(token, NOW)


def test_keys_and_settings():
    with pytest.raises(ValueError):
        Tokens(b"short")
    made = Tokens.from_settings("k" * 40, None, development=True)
    assert made.development and made.ttl == 900
    assert not Tokens.from_settings("k" * 40, "60").development
    assert Tokens.from_settings("k" * 40, "60").ttl == 60
    with pytest.raises(ValueError):
        Tokens(KEY).issue({**CANDIDATE_LOGIN, "role": "root"}, NOW)
    with pytest.raises(ValueError):
        Tokens(KEY).issue({**STAFF_LOGIN, "registration_point": None}, NOW)


def test_bearer_header():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    for value in (None, "", "Basic abc", "Bearer", "Bearer  ", "abc"):
        assert bearer_token(value) is None


# -------------------------------------------------------------------------- access rules

RULES = {PUBLIC: {None, "candidate", "staff", "authority", "operator"},
         SIGNED_IN: {"candidate", "staff", "authority", "operator"},
         CANDIDATE: {"candidate"}, STAFF: {"staff"}, AUTHORITY: {"authority"},
         OPERATOR: {"operator"}, OVERSIGHT: {"operator", "authority"}}


@pytest.mark.parametrize("access", list(RULES), ids=lambda a: a.name)
@pytest.mark.parametrize("role", [None, "candidate", "staff", "authority", "operator"])
def test_authorize(tokens, access, role):
    token = None
    if role:
        login = STAFF_LOGIN if role == "staff" else {**CANDIDATE_LOGIN, "role": role}
        token = tokens.issue(login, NOW)[0]
    if role in RULES[access]:
        who = authorize(access, token, tokens, NOW)
        assert (who is None) if access is PUBLIC else (who.role == role)
        return
    with pytest.raises(ApiError) as exc:
        authorize(access, token, tokens, NOW)
    assert exc.value.status == (401 if role is None else 403)
    if role is None:
        assert exc.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_authorize_expired_and_bad_tokens(tokens):
    token = tokens.issue(CANDIDATE_LOGIN, NOW)[0]
    with pytest.raises(ApiError) as exc:
        authorize(CANDIDATE, token, tokens, NOW + timedelta(minutes=16))
    assert exc.value.code == "unauthorized" and "expired" in exc.value.message
    with pytest.raises(ApiError) as exc:
        authorize(CANDIDATE, "garbage", tokens, NOW)
    assert exc.value.code == "unauthorized" and "not valid" in exc.value.message
    assert authorize(PUBLIC, "garbage", tokens, NOW) is None  # public routes ignore tokens


# -------------------------------------------------------------------------- rate limit


def test_five_failures_lock_the_pair_for_fifteen_minutes_not_the_username():
    limiter = LoginLimiter(per_pair=5, pair_window=900, per_address=20, window=60)
    t = 1000.0
    for i in range(5):
        limiter.check("ZhangSan", "10.0.0.1", t + i)
        limiter.failed("ZhangSan", "10.0.0.1", t + i)
    with pytest.raises(ApiError) as exc:
        limiter.check("zhangsan ", "10.0.0.1", t + 10)  # same pair, any case
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "890"
    assert limiter.login_retry_after("zhangsan", "10.0.0.1", t + 899.5) == 1
    limiter.check("zhangsan", "10.0.0.1", t + 900)  # the first failure has aged out
    limiter.check("zhangsan", "10.0.0.2", t + 10)  # the owner, from their own address
    limiter.check("lisi", "10.0.0.3", t + 10)  # other users are not affected


def test_unknown_and_existing_usernames_are_limited_alike():
    # the limiter cannot tell them apart: it never asks whether a username exists
    limiter = LoginLimiter(per_pair=2, pair_window=900, per_address=100, window=60)
    answers = {}
    for name in ("zhangsan", "nosuchuser"):
        for i in range(2):
            limiter.failed(name, "10.0.0.1", 100.0 + i)
        answers[name] = limiter.login_retry_after(name, "10.0.0.1", 102.0)
    assert answers["zhangsan"] == answers["nosuchuser"] > 0


def test_per_address_limit_spans_usernames_and_success_clears_only_the_pair():
    limiter = LoginLimiter(per_pair=5, per_address=3, window=60)
    for i, name in enumerate(["a", "b", "c"]):
        limiter.failed(name, "10.0.0.9", 100.0 + i)
    with pytest.raises(ApiError):
        limiter.check("d", "10.0.0.9", 103.0)
    limiter.check("d", "10.0.0.8", 103.0)
    limiter.succeeded("a", "10.0.0.9")
    with pytest.raises(ApiError):  # the address keeps its count
        limiter.check("a", "10.0.0.9", 103.0)
    two = LoginLimiter(per_pair=2, per_address=100, window=60)
    two.failed("x", "1", 0.0)
    two.failed("x", "1", 1.0)
    two.succeeded("X", "1")
    two.check("x", "1", 2.0)


def test_rate_limiter_counts_each_kind_in_its_own_window():
    limiter = RateLimiter({"address": (3, 60), "id_number": (2, 600)})
    for t in (0.0, 1.0):
        limiter.check({"address": "a", "id_number": "X1"}, t)
        limiter.hit({"address": "a", "id_number": "X1"}, t)
    with pytest.raises(ApiError) as exc:  # the ID number, from another address
        limiter.check({"address": "b", "id_number": "X1"}, 2.0)
    assert exc.value.headers["Retry-After"] == "598"
    limiter.hit({"address": "a", "id_number": "X2"}, 2.0)
    with pytest.raises(ApiError):  # the address, another ID number
        limiter.check({"address": "a", "id_number": "X3"}, 3.0)
    limiter.check({"address": "a", "id_number": "X3"}, 60.5)
    assert identity_key(" 11010519491231002x ") == "11010519491231002X"
    assert {mobile_key(m) for m in ("13900000001", "+86 139-0000-0001", "0086 13900000001",
                                    "86-139 0000 0001")} == {"13900000001"}


def test_limiter_memory_is_bounded():
    limiter = LoginLimiter(max_keys=10)
    for i in range(100):
        limiter.failed(f"user{i}", f"10.0.{i}.1", float(i))
    assert len(limiter._failures) <= 10


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["x", "y"]),
                          st.floats(0, 5)), max_size=40))
def test_limiter_never_admits_more_than_the_limit(attempts):
    """Whatever the order: within any window, no (username, address) pair gets more than
    its failures."""
    limiter = LoginLimiter(per_pair=3, pair_window=60, per_address=1000, window=60)
    t, admitted = 0.0, {}
    for user, address, step in attempts:
        t += step
        try:
            limiter.check(user, address, t)
        except ApiError:
            continue
        admitted.setdefault((user, address), []).append(t)
        limiter.failed(user, address, t)
    for times in admitted.values():
        for i, start in enumerate(times):
            assert len([x for x in times[i:] if x < start + 60]) <= 3


def test_client_address_behind_trusted_proxies_only():
    ingress = trusted_networks("10.0.0.0/8, 192.168.1.5")
    assert client_address("203.0.113.9", "1.2.3.4", ingress) == "203.0.113.9"  # not a proxy
    assert client_address("10.1.2.3", "198.51.100.7", ingress) == "198.51.100.7"
    # the client may claim anything on the left; the rightmost untrusted hop counts
    assert client_address("10.1.2.3", "6.6.6.6, 198.51.100.7, 192.168.1.5", ingress) \
        == "198.51.100.7"
    assert client_address("10.1.2.3", "10.9.9.9", ingress) == "10.1.2.3"
    assert client_address("10.1.2.3", None, ingress) == "10.1.2.3"
    assert client_address("10.1.2.3", "198.51.100.7", ()) == "10.1.2.3"  # none trusted
    assert client_address(None, None, ()) == "unknown"
    assert trusted_networks(["::1", "127.0.0.0/8"]) and trusted_networks(None) == ()


# -------------------------------------------------------------------------- renewal, revocation


def test_renewal_keeps_the_claims_and_the_sign_in_time_with_a_new_expiry():
    tokens = Tokens(b"k" * 32, ttl=900)
    token, _ = tokens.issue(STAFF_LOGIN, NOW)
    first = tokens.verify(token, NOW)
    later = NOW + timedelta(minutes=10)
    renewed, expires_at = tokens.renew(first, later)
    again = tokens.verify(renewed, later)
    assert expires_at == int(later.timestamp()) + 900 == again.expires_at
    assert again.signed_in_at == first.signed_in_at == int(NOW.timestamp() * 1000) / 1000
    assert (again.account_id, again.role, again.registration_point, again.name,
            again.username) == (first.account_id, first.role, first.registration_point,
                                first.name, first.username)
    with pytest.raises(TokenError):  # the old one still expires when it did
        tokens.verify(token, NOW + timedelta(minutes=16))


def test_a_sign_in_before_the_password_change_is_revoked():
    tokens = Tokens(b"k" * 32, ttl=900)
    principal = tokens.verify(tokens.issue(CANDIDATE_LOGIN, NOW)[0], NOW)
    t = NOW.timestamp()
    assert not revoked(principal, None)
    assert revoked(principal, t + 0.002)
    assert not revoked(principal, t)  # the same millisecond: the sign-in came after
    assert not revoked(principal, t - 60)
