"""The gateway's own pages without the services: ``/dashboard`` (old bookmarks, the README)
sends the browser to the web site's dashboard with its query, and the verification page's
style sheet is served. The gateway runs alone; neither needs a service."""

import pytest
import requests

from services.gateway.service import GatewayService
from shared.clock import ControlledClock
from tests.integration.test_application_flow import at
from tests.integration.test_gateway_flow import TOKEN_KEY
from tests.support import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def base(container_factory, amqp_uri):
    port = free_port()
    gateway = container_factory(GatewayService, {
        "AMQP_URI": amqp_uri, "CLOCK": ControlledClock(at(2026, 4, 7, 10, 30)),
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "GATEWAY_TOKEN_KEY": TOKEN_KEY})
    gateway.start()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("path, target", [
    ("/dashboard", "/#/dashboard"),
    ("/dashboard?wall=1", "/#/dashboard?wall=1"),
    ("/dashboard?wall=1&session_id=2026-shanghai+%E4%B8%8A", "/#/dashboard?wall=1&session_id=2026-shanghai+%E4%B8%8A"),
    ("/dashboard?x=%0d%0aSet-Cookie:a=b", "/#/dashboard?x=%0D%0ASet-Cookie%3Aa%3Db"),
])
def test_dashboard_redirects_to_the_sites_dashboard(base, path, target):
    r = requests.get(base + path, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == target
    assert "Set-Cookie" not in r.headers


def test_the_verification_pages_style_sheet(base):
    r = requests.get(base + "/verify/style.css", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/css")
    assert ".verify .verdict" in r.text
    for gone in ("/dashboard/app.js", "/dashboard/app.css"):
        assert requests.get(base + gone, timeout=10).status_code == 404
