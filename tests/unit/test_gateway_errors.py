"""How every failure becomes the gateway's one error shape, with the right status."""

import eventlet
import pytest
from nameko.exceptions import (
    ContainerBeingKilled,
    IncorrectSignature,
    MethodNotFound,
    RemoteError,
    UnknownService,
    deserialize,
    serialize,
)

from services.gateway.errors import CODES, ApiError, from_exception
from shared.errors import Conflict, NotFound, Refused, Unauthorized, Unavailable, ValidationFailed


def roundtrip(exc):
    """As an RPC caller receives it: serialized by the service, deserialized by nameko."""
    return deserialize(serialize(exc))


@pytest.mark.parametrize("exc, code, status", [
    (ValidationFailed("Some fields are not valid.", {"mobile": "11 digits"}), "validation_failed", 400),
    (Refused("Applying is possible only in 网上报名.", {"window": "application"}), "refused", 409),
    (NotFound("No such exam session.", {"session_id": "x"}), "not_found", 404),
    (Unauthorized("staff of point 3001 cannot decide cases of point 2916", code="wrong_point"),
     "forbidden", 403),
    (Conflict("Someone else changed it first; try again."), "conflict", 409),
])
def test_service_refusals_keep_message_and_fields(exc, code, status):
    error, unexpected = from_exception(roundtrip(exc))
    assert (error.code, error.status, unexpected) == (code, status, False)
    assert error.message == exc.message
    assert error.fields == {k: str(v) for k, v in exc.fields.items()}
    body = error.body("cid-123")["error"]
    assert body["correlation_id"] == "cid-123" and body["code"] == code
    assert ("reason" in body) == (exc.error_code != type(exc).code)


def test_unauthorized_at_login_is_401_with_its_reason():
    locked = Unauthorized("too many failed logins: locked until 10:45", code="locked")
    error, _ = from_exception(roundtrip(locked), unauthorized="unauthorized")
    assert (error.status, error.code, error.reason) == (401, "unauthorized", "locked")
    error, _ = from_exception(roundtrip(Unauthorized("The current password is wrong.",
                                                     {"old_password": "wrong password"})),
                              unauthorized="validation_failed")
    assert error.status == 400 and error.fields == {"old_password": "wrong password"}


def test_nested_fields_are_flattened_to_strings():
    exc = ValidationFailed("bad", {"files": {"0": {"content_base64": ["not valid base64"]}},
                                   "level": ["one of", "L1, L2"]})
    error, _ = from_exception(roundtrip(exc))
    assert error.fields == {"files.0.content_base64": "not valid base64", "level": "one of L1, L2"}


@pytest.mark.parametrize("exc, code, unexpected", [
    (UnknownService("admission"), "unavailable", False),
    (Unavailable("The service could not reach its database for a moment."), "unavailable", False),
    # a factory: a Timeout starts when made, and one made at collection would fire later
    # in whichever test first yields to the hub
    (lambda: eventlet.Timeout(1), "unavailable", False),
    (ContainerBeingKilled(), "unavailable", False),
    (MethodNotFound("raise_enquiry"), "unavailable", True),
    (IncorrectSignature("bad args"), "internal", True),
    (RemoteError("KeyError", "'session_id'"), "internal", True),
    (KeyError("secret internals"), "internal", True),
    (ZeroDivisionError("division by zero"), "internal", True),
])
def test_infrastructure_failures(exc, code, unexpected):
    if callable(exc) and not isinstance(exc, BaseException):
        exc = exc()
    try:
        error, flagged = from_exception(exc)
    finally:
        if isinstance(exc, eventlet.Timeout):
            exc.cancel()
    assert (error.code, flagged) == (code, unexpected)
    assert error.status == CODES[code]
    text = str(error.body("c"))
    assert "Traceback" not in text and "secret internals" not in text and "KeyError" not in text
    if code == "unavailable":
        assert "Retry-After" in error.headers


def test_unknown_service_names_it():
    error, _ = from_exception(UnknownService("admission"))
    assert "admission" in error.message and error.status == 503


def test_codes_and_statuses():
    assert CODES["rate_limited"] == 429 and CODES["too_large"] == 413
    assert CODES["unsupported_media_type"] == 415 and CODES["refused"] == 409
    with pytest.raises(ValueError):
        ApiError("teapot", "no")
    body = ApiError("validation_failed", "m").body("c")
    assert body == {"error": {"code": "validation_failed", "message": "m", "correlation_id": "c"}}
