"""The gateway's HTTP edge: routes that know who may call them, and one error shape.

``route(method, url, access=..., summary=...)`` is nameko's ``@http`` with the route's
access rule and its OpenAPI description attached (``services.gateway.openapi`` builds the
document from them). Each request:

1. gets a correlation id (the client's ``X-Correlation-Id`` if it is sane, else a new
   one), returned in the ``X-Correlation-Id`` header and in every error body, and carried
   to the services with the RPC calls (so their logs and events name it too);
2. is authorized before any worker runs: 401 without a good token, 403 for a role the
   route is not for (``services.gateway.auth``);
3. runs its worker, which calls the services; whatever it raises becomes the error shape
   (``services.gateway.errors``). Unexpected failures are logged with the correlation id
   and answered 500 without details.

Unknown paths and methods get the same JSON shape (404, 405) from the WSGI app itself.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import OrderedDict
from functools import partial

from eventlet.event import Event
from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, ServiceProxy
from nameko.web.server import WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from services.gateway import rpc
from services.gateway.auth import (
    Access,
    LoginLimiter,
    Principal,
    RateLimiter,
    Tokens,
    authorize,
    bearer_token,
    client_address,
    revoked,
    trusted_networks,
)
from services.gateway.errors import ApiError, ServiceUnavailable, from_exception
from shared.clock import clock_from_config
from shared.dependencies import StopWatch
from shared.dev_secrets import GATEWAY_TOKEN, secret
from shared.errors import KaowuError
from shared.health import HttpEndpoint
from shared.health import WebServer as SharedWebServer
from shared.logging import get_logger
from shared.metrics import Metrics

log = get_logger(__name__)
DEFAULT_RPC_TIMEOUT = 10.0  # seconds: GATEWAY_RPC_TIMEOUT, a service's time to answer the edge

_CORRELATION = re.compile(r"[A-Za-z0-9._-]{8,64}\Z")
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
# blob: for images and frames only: the staff pages show a candidate's proof (fetched with
# the token) and photo from blob: URLs; scripts stay 'self' alone
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: blob:; frame-src 'self' blob:; object-src 'none'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def correlation_id(request) -> str:
    given = request.headers.get("X-Correlation-Id") or ""
    return given if _CORRELATION.match(given) else uuid.uuid4().hex


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return Response(body, status=status, headers=headers, mimetype="application/json")


def error_response(error: ApiError, cid: str) -> Response:
    return json_response(error.body(cid), error.status, dict(error.headers))


def finish(response: Response, cid: str, page: bool = False) -> Response:
    for name, value in API_HEADERS.items():
        response.headers.setdefault(name, value)
    if page:
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    response.headers["X-Correlation-Id"] = cid
    return response


# --------------------------------------------------------------------------- the server


class GatewayWsgiApp(WsgiApp):
    """nameko's WSGI app, answering unknown paths and methods in the API's error shape."""

    def __call__(self, environ, start_response):
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            # eventlet's server de-chunks the body and ends it itself but does not say so;
            # werkzeug then reads a body without Content-Length as empty. The readers in
            # uploads.py still cap it (413 as soon as it passes the limit).
            environ["wsgi.input_terminated"] = True
        request = Request(environ, shallow=True)
        cid = correlation_id(request)
        try:
            adapter = self.url_map.bind_to_environ(environ)
            try:
                provider, values = adapter.match()
            except MethodNotAllowed as exc:
                allowed = sorted(set(exc.valid_methods or ()) - {"HEAD"})
                response = finish(error_response(ApiError(
                    "method_not_allowed", f"{request.method} is not allowed on {request.path}; "
                    f"use {', '.join(allowed)}.", headers={"Allow": ", ".join(allowed)}), cid), cid)
            except NotFound:
                response = finish(error_response(ApiError(
                    "not_found", f"There is nothing at {request.method} {request.path}; the API "
                    "is described at GET /api/openapi.json."), cid), cid)
            except HTTPException as exc:  # e.g. a redirect to the canonical URL
                return exc(environ, start_response)
            else:
                request.path_values = values
                request.correlation_id = cid
                response = provider.handle_request(request)
        except Exception as exc:  # never a traceback to the client
            log.error("http.edge_failed", correlation_id=cid, error_type=type(exc).__name__,
                      exc_info=exc)
            response = finish(error_response(ApiError("internal", "Something went wrong on our "
                                                      "side; it has been logged."), cid), cid)
        return response(environ, start_response)


class GatewayWebServer(SharedWebServer):
    def get_wsgi_app(self):
        return GatewayWsgiApp(self)


# --------------------------------------------------------------------------- the gate


class Gate(DependencyProvider):
    """What the edge needs per process: the token keys, the rate limiters, the clock and
    the cache of accounts' password changes (to end earlier sign-ins).

    Config (or environment): ``GATEWAY_TOKEN_KEY`` (secret, ≥ 32 bytes; unset, the
    development key in var/ of ``shared.dev_secrets``), ``GATEWAY_TOKEN_TTL`` (seconds,
    900), ``GATEWAY_LOGIN_LIMIT`` ({per_pair: 5, pair_window: 900, per_address: 20,
    window: 60}), ``GATEWAY_SIGNUP_LIMIT`` ({per_address: 20, per_identity: 5, window:
    600}), ``GATEWAY_RESET_LIMIT`` ({per_address: 10, per_account: 5, window: 900}),
    ``GATEWAY_REVOCATION_CACHE`` (seconds, 30), ``GATEWAY_SESSION_MAX`` (seconds a sign-in
    may be renewed for, 43200), ``GATEWAY_RPC_TIMEOUT`` (seconds, 10),
    ``GATEWAY_TRUSTED_PROXIES`` (the ingress: its ``X-Forwarded-For`` names the client;
    none by default), ``GATEWAY_CHECK_REPLIES`` (tests: an answer its route's reply schema
    does not describe fails the request, 500, instead of being logged).
    """

    # RPC from the edge itself (the revocation check runs before any worker)
    rpc_reply_listener = ReplyListener()
    MAX_CACHED_ACCOUNTS = 100_000

    def setup(self):
        cfg = self.container.config
        StopWatch.of(self.container)  # the edge's RPC waits end when a stop begins
        key, configured = secret(GATEWAY_TOKEN, cfg)
        ttl = cfg.get("GATEWAY_TOKEN_TTL") or os.environ.get("GATEWAY_TOKEN_TTL")
        self.tokens = Tokens.from_settings(key, ttl, development=not configured)
        limits = cfg.get("GATEWAY_LOGIN_LIMIT") or {}
        self.limiter = LoginLimiter(
            per_pair=int(limits.get("per_pair", limits.get("per_username", 5))),
            pair_window=float(limits.get("pair_window", 900)),
            per_address=int(limits.get("per_address", 20)),
            window=float(limits.get("window", 60)))
        signup = cfg.get("GATEWAY_SIGNUP_LIMIT") or {}
        window = float(signup.get("window", 600))
        per_identity = int(signup.get("per_identity", 5))  # per ID number, per mobile
        self.signup_limiter = RateLimiter(
            {"address": (int(signup.get("per_address", 20)), window),
             "id_number": (per_identity, window), "mobile": (per_identity, window)},
            message="Too many sign-up attempts")
        reset = cfg.get("GATEWAY_RESET_LIMIT") or {}
        window = float(reset.get("window", 900))
        self.reset_limiter = RateLimiter(
            {"address": (int(reset.get("per_address", 10)), window),
             "account": (int(reset.get("per_account", 5)), window)},
            message="Too many password-reset attempts")
        self.revocation_ttl = float(cfg.get("GATEWAY_REVOCATION_CACHE", 30))
        self.session_max = float(cfg.get("GATEWAY_SESSION_MAX", 43200))
        self._changes: OrderedDict[str, tuple[float | None, float]] = OrderedDict()
        self.clock = clock_from_config(cfg)
        self.rpc_timeout = float(cfg.get("GATEWAY_RPC_TIMEOUT", DEFAULT_RPC_TIMEOUT))
        self.check_replies = bool(cfg.get("GATEWAY_CHECK_REPLIES"))
        self.trusted = trusted_networks(cfg.get("GATEWAY_TRUSTED_PROXIES")
                                        or os.environ.get("GATEWAY_TRUSTED_PROXIES"))

    def client(self, request) -> str:
        return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                              self.trusted)

    def get_dependency(self, worker_ctx):
        return self

    # -- ending sign-ins on a password change ------------------------------------------

    def ensure_current(self, principal: Principal, entrypoint, cid: str):
        """401 if the account's password changed after this token's sign-in."""
        if revoked(principal, self.credentials_changed_at(principal.account_id, entrypoint,
                                                          cid)):
            raise ApiError("unauthorized", "Your password was changed since you signed in; "
                           "sign in again. 密码已修改，请重新登录。", reason="signed_out",
                           headers={"WWW-Authenticate": 'Bearer realm="kaowu", '
                                    'error="invalid_token", error_description="revoked"'})

    def credentials_changed_at(self, account_id: str, entrypoint, cid: str) -> float | None:
        """The account's last password change, from the account service, cached per
        account for ``GATEWAY_REVOCATION_CACHE`` seconds: one RPC per signed-in account and
        cache window, a dictionary look-up otherwise. If the account service does not
        answer, the last known value is used; with none, the request is 503."""
        now = time.monotonic()
        known = self._changes.get(account_id)
        if known is not None and now - known[1] < self.revocation_ttl:
            return known[0]
        ctx = WorkerContext(self.container, None, entrypoint, data={"correlation_id": cid})
        proxy = ServiceProxy(ctx, "account", self.rpc_reply_listener)
        try:
            value = rpc.call(proxy, "account", "credentials_changed_at", account_id,
                             timeout=min(self.rpc_timeout, 5.0))
        except ServiceUnavailable:
            if known is None:
                raise
            log.warning("gateway.revocation_stale", account_id=account_id,
                        age_s=round(now - known[1], 1))
            return known[0]
        self._changes[account_id] = (value, now)
        self._changes.move_to_end(account_id)
        while len(self._changes) > self.MAX_CACHED_ACCOUNTS:
            self._changes.popitem(last=False)
        return value

    def forget_credentials(self, account_id: str):
        """This process saw the password change (its own reset or change): no waiting."""
        self._changes.pop(account_id, None)


# --------------------------------------------------------------------------- routes


class ApiRoute(HttpEndpoint):
    """An ``@http`` entrypoint with its access rule and its OpenAPI description.

    The worker method is called as ``method(request, caller, **path_values)``; ``caller``
    is the ``Principal`` (None on public routes). It returns a werkzeug ``Response``, or
    data to answer as JSON 200, or ``(status, data)``.
    """

    server = GatewayWebServer()

    def __init__(self, method, url, *, access: Access, summary: str, tags=(),
                 description: str = "", body: dict | None = None, body_required: bool = True,
                 uploads: dict | None = None, query: dict | None = None,
                 path: dict | None = None, ok: int = 200, ok_description: str = "OK",
                 ok_content: str = "application/json", reply=None,
                 errors=(), unauthorized: str = "forbidden", page: bool = False,
                 expected_exceptions=(KaowuError, ApiError), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)
        self.access = access
        self.summary, self.tags, self.description = summary, tuple(tags), description
        self.body, self.body_required, self.uploads = body, body_required, uploads
        self.query, self.path_params = query or {}, path or {}
        self.ok, self.ok_description = ok, ok_description
        self.ok_content = ok_content
        # the marshmallow schema every JSON answer is dumped through (an instance; ``many``
        # for a list): the document's answer is made from it, so it says what is sent
        self.reply = reply() if isinstance(reply, type) else reply
        self.errors = tuple(errors)
        self.unauthorized = unauthorized
        self.page = page
        self._gate = None
        self._metrics = False  # not looked up yet (None: the service declares none)

    def get_url_rule(self):
        return Rule(self.url, methods=[self.method])

    @property
    def gate(self) -> Gate:
        if self._gate is None:
            self._gate = next(d for d in self.container.dependencies if isinstance(d, Gate))
        return self._gate

    @property
    def metrics(self):
        """The service's live counters (``shared.metrics``), or None."""
        if self._metrics is False:
            self._metrics = next((d.metrics for d in self.container.dependencies
                                  if isinstance(d, Metrics)), None)
        return self._metrics

    def handle_request(self, request):
        request.shallow = False
        cid = getattr(request, "correlation_id", None) or correlation_id(request)
        started = time.perf_counter()
        caller = None
        try:
            gate = self.gate
            caller = authorize(self.access, bearer_token(request.headers.get("Authorization")),
                               gate.tokens, gate.clock.now())
            if caller is not None:
                gate.ensure_current(caller, self, cid)
            context = {"correlation_id": cid, "actor": caller.actor if caller else "anonymous"}
            args, kwargs = (request, caller), dict(request.path_values)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(self, args, kwargs, context_data=context,
                                        handle_result=partial(self._result, event))
            result, exc_info = event.wait()
            if exc_info is not None:
                raise exc_info[1]
            response = self._to_response(result, cid)
        except Exception as exc:
            error, unexpected = from_exception(exc, unauthorized=self.unauthorized)
            if unexpected:
                log.error("http.failed", correlation_id=cid, route=f"{self.method} {self.url}",
                          error_type=type(exc).__name__, error=str(exc)[:500], exc_info=exc)
            response = error_response(error, cid)
        finish(response, cid, page=self.page)
        seconds = time.perf_counter() - started
        log.info("http.request", correlation_id=cid, method=self.method, route=self.url,
                 status=response.status_code, role=caller.role if caller else None,
                 ms=round(seconds * 1000, 2))
        if self.metrics is not None:  # by route template: a bounded set of series
            self.metrics.observe_request(self.url, self.method, response.status_code, seconds)
        return response

    def _to_response(self, result, cid: str) -> Response:
        if isinstance(result, Response):
            return result
        status, data = (result if isinstance(result, tuple) and len(result) == 2
                        and isinstance(result[0], int) else (200, result))
        return json_response(self._dump(data, cid), status)

    def _dump(self, data, cid: str):
        """``data`` through the route's reply schema: only what the document describes is
        sent. A reply that does not fit it (a service added, renamed or dropped a field and
        the schema was not changed with it) is logged by field; with
        ``GATEWAY_CHECK_REPLIES`` (the tests) it fails the request instead."""
        if self.reply is None:
            raise ValueError(f"{self.method} {self.url} answers JSON without a reply schema")
        problems = self.reply.validate(data)
        if problems:
            if self.gate.check_replies:
                raise ReplyOffSchema(f"{self.method} {self.url}: {problems}")
            log.warning("gateway.reply_off_schema", correlation_id=cid,
                        route=f"{self.method} {self.url}", fields=sorted(_paths(problems)))
        return self.reply.dump(data)

    @staticmethod
    def _result(event, worker_ctx, result, exc_info):
        event.send((result, exc_info))
        return result, exc_info


class ReplyOffSchema(Exception):
    """An answer that its route's reply schema does not describe (GATEWAY_CHECK_REPLIES)."""


def _paths(problems, prefix="") -> list[str]:
    """Where a marshmallow error report points: ``a.b.0.c`` (names and positions only)."""
    if not isinstance(problems, dict):
        return [prefix or "_schema"]
    out = []
    for key, value in problems.items():
        out += _paths(value, f"{prefix}.{key}" if prefix else str(key))
    return out


route = ApiRoute.decorator


def routes_of(service_cls) -> list[tuple[str, ApiRoute]]:
    """``(method name, route)`` for every route a service class declares (unbound), in
    definition order."""
    found = []
    for name, member in vars(service_cls).items():
        for ep in getattr(member, "nameko_entrypoints", ()):
            if isinstance(ep, ApiRoute):
                found.append((name, ep))
    return found
