"""The gateway's one error shape, and how every failure becomes it.

Every error answer, whatever went wrong, is::

    {"error": {"code": "...", "message": "...", "fields": {...}, "correlation_id": "..."}}

with ``fields`` only when there are some (bad input: field -> message), and ``reason`` when
a service gave a finer code than its class (``locked``, ``out_of_service``, ``wrong_point``
…). ``code`` is one of ``CODES`` and fixes the HTTP status. Refusals from the services arrive as ``shared.errors``
instances (nameko deserializes them by class) and keep their message and fields; anything
else is logged with the correlation id and answered as ``internal`` without its details:
no traceback, exception text or service internals ever reach a client.
"""

from __future__ import annotations

import eventlet
from marshmallow import Schema, validate
from marshmallow import fields as f
from nameko.exceptions import (
    ContainerBeingKilled,
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    UnknownService,
)

from shared.errors import (
    Conflict,
    KaowuError,
    NotFound,
    Refused,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    flat_fields,
)

#: error code -> HTTP status
CODES = {
    "validation_failed": 400,
    "unauthorized": 401,  # no token, a bad or expired one, or wrong credentials at login
    "forbidden": 403,  # signed in, but this is not yours to do or see
    "not_found": 404,
    "method_not_allowed": 405,
    "refused": 409,  # well-formed, but a rule says no (a window is closed, a wrong state)
    "conflict": 409,  # someone else changed the same thing first: try again
    "too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,  # a service behind the gateway is down or did not answer in time
}



class ErrorDetail(Schema):
    """What went wrong."""

    code = f.String(required=True, validate=validate.OneOf(sorted(CODES)))
    message = f.String(required=True)
    reason = f.String(metadata={"description": "a service's finer code, e.g. locked"})
    fields = f.Dict(keys=f.String(), values=f.String(),
                    metadata={"description": "field -> what is wrong with it"})
    correlation_id = f.String(required=True)


class ErrorSchema(Schema):
    """Every error answer (the OpenAPI document's ``Error``)."""

    error = f.Nested(ErrorDetail, required=True)


ERROR = ErrorSchema()

INTERNAL_MESSAGE = ("Something went wrong on our side. It has been logged; quote the "
                    "correlation id if you contact support.")


class ApiError(Exception):
    """An answer the client gets as the error shape: ``code`` (a key of ``CODES``)."""

    def __init__(self, code: str, message: str, fields: dict | None = None,
                 headers: dict | None = None, reason: str | None = None):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code, self.message = code, message
        self.fields = fields or {}
        self.headers = headers or {}
        self.reason = reason  # a service's finer code (e.g. "locked", "out_of_service")

    @property
    def status(self) -> int:
        return CODES[self.code]

    def body(self, correlation_id: str) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.reason:
            error["reason"] = self.reason
        if self.fields:
            error["fields"] = self.fields
        error["correlation_id"] = correlation_id
        return ERROR.dump({"error": error})


class ServiceUnavailable(ApiError):
    def __init__(self, service: str, message: str):
        super().__init__("unavailable", message, headers={"Retry-After": "5"})
        self.service = service


def from_exception(exc: BaseException, *, unauthorized: str = "forbidden") -> tuple[ApiError, bool]:
    """``(the ApiError to answer, whether it is unexpected and must be logged)``.

    ``unauthorized``: what a service's ``Unauthorized`` means on this route. At login it is
    wrong credentials (``unauthorized``, 401); elsewhere the caller is signed in and the
    service says the thing is not theirs (``forbidden``, 403), e.g. staff of another
    registration point deciding a case.
    """
    if isinstance(exc, ApiError):
        return exc, False
    if isinstance(exc, Unavailable):
        return ApiError("unavailable", exc.message, headers={"Retry-After": "2"}), False
    if isinstance(exc, KaowuError):
        code = _kaowu_code(exc, unauthorized)
        finer = exc.error_code if exc.error_code != type(exc).code else None
        return ApiError(code, exc.message, _plain_fields(exc.fields), reason=finer), False
    if isinstance(exc, UnknownService):
        name = exc.args[0] if exc.args else "a"
        return ServiceUnavailable(name, f"The {name} service is not running; try again later."), False
    if isinstance(exc, ContainerBeingKilled):
        return ApiError("unavailable", "The gateway is shutting down; try again.",
                        headers={"Retry-After": "2"}), False
    if isinstance(exc, MethodNotFound):
        # a service older than this gateway: a deployment is half done
        return ApiError("unavailable", "This function is not available yet; try again later.",
                        headers={"Retry-After": "30"}), True
    if isinstance(exc, IncorrectSignature | MalformedRequest | RemoteError):
        return ApiError("internal", INTERNAL_MESSAGE), True
    if isinstance(exc, eventlet.Timeout):
        return ApiError("unavailable", "A service did not answer in time; try again shortly.",
                        headers={"Retry-After": "5"}), False
    return ApiError("internal", INTERNAL_MESSAGE), True


def _kaowu_code(exc: KaowuError, unauthorized: str) -> str:
    if isinstance(exc, ValidationFailed):
        return "validation_failed"
    if isinstance(exc, Refused):
        return "refused"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, Unauthorized):
        return unauthorized
    if isinstance(exc, Conflict):
        return "conflict"
    return "refused"  # a KaowuError subclass added later: still a clear refusal


def _plain_fields(fields) -> dict:
    """Fields as ``{name: message}`` with string messages (nested marshmallow messages from
    a service are joined), so clients can rely on one shape."""
    if not isinstance(fields, dict):
        return {"_schema": str(fields)} if fields else {}
    return flat_fields(fields)
