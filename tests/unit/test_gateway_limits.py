"""The gateway's limit settings: GATEWAY_LOGIN_LIMIT, GATEWAY_SIGNUP_LIMIT,
GATEWAY_RESET_LIMIT, GATEWAY_REVOCATION_CACHE and GATEWAY_SESSION_MAX reach its limiters."""

from types import SimpleNamespace

import pytest

from services.gateway.errors import ApiError
from services.gateway.web import Gate


def gate(**config):
    g = Gate()
    g.container = SimpleNamespace(config={"GATEWAY_TOKEN_KEY": "k" * 32, **config})
    g.setup()
    return g


def test_defaults():
    g = gate()
    assert g.limiter.limits == {"pair": (5, 900.0), "address": (20, 60.0)}
    assert g.signup_limiter.limits == {"address": (20, 600.0), "id_number": (5, 600.0),
                                       "mobile": (5, 600.0)}
    assert g.reset_limiter.limits == {"address": (10, 900.0), "account": (5, 900.0)}
    assert (g.revocation_ttl, g.session_max) == (30.0, 43200.0)


def test_settings_are_read_and_the_old_login_key_still_counts():
    g = gate(GATEWAY_LOGIN_LIMIT={"per_username": 3, "per_address": 7, "window": 30},
             GATEWAY_SIGNUP_LIMIT={"per_address": 2, "per_identity": 1, "window": 5},
             GATEWAY_RESET_LIMIT={"per_address": 4, "per_account": 2, "window": 60},
             GATEWAY_REVOCATION_CACHE=1, GATEWAY_SESSION_MAX=600)
    assert g.limiter.limits == {"pair": (3, 900.0), "address": (7, 30.0)}
    assert g.signup_limiter.limits["mobile"] == (1, 5.0)
    assert g.reset_limiter.limits == {"address": (4, 60.0), "account": (2, 60.0)}
    assert (g.revocation_ttl, g.session_max) == (1.0, 600.0)
    g.signup_limiter.hit({"address": "a", "mobile": "139"}, 0.0)
    with pytest.raises(ApiError) as exc:
        g.signup_limiter.check({"address": "b", "mobile": "139"}, 1.0)
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "4"
