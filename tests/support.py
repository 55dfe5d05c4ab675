"""Helpers the integration tests share."""

import json
import socket
import time

#: the services' catch-up timer in the tests' stacks, seconds (``CATCH_UP_INTERVAL``). Each
#: tick pulls from every upstream by an ``events_after`` RPC; messages deliver the events at
#: once, so the pull only finds what they missed (a test of that sets its own interval), and
#: records what the consumer passed over (a wait for "caught up" waits for it). At 0.3 s an
#: idle stack of seven took ~4 % of a core more than at 2 s; the whole suite ~16 CPU s more.
CATCH_UP = 1.0
#: the services' deadline timer in the tests' stacks, seconds (``DEADLINE_INTERVAL``). The
#: timer also fires whenever the test moves the stack's ``ControlledClock``
#: (``shared.service.DeadlineTimer``), so a test jumping past a window's close needs no
#: faster tick; at 0.2 s each tick of five services (a worker and a read of the sessions)
#: made an idle stack cost ~4 % of a core more.
DEADLINE = 1.0


def free_port() -> int:
    """A loopback port free now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """``predicate()``'s first truthy value within ``timeout`` seconds, polled every
    ``interval``; an ``AssertionError`` if there is none by then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


_VALIDATORS: dict = {}


def validate_json(instance, schema: dict, formats: bool = False) -> None:
    """``jsonschema.validate`` with the validator made once per schema: ``validate`` checks
    the schema against its meta-schema at every call, which cost the suite more CPU than the
    checks themselves (every reply of every API test is checked)."""
    import jsonschema

    key = (json.dumps(schema, sort_keys=True), formats)
    validator = _VALIDATORS.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _VALIDATORS[key] = cls(
            schema, format_checker=jsonschema.FormatChecker() if formats else None)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


class CapturedPublisher:
    """The relay's publisher, in hand: the messages it would have published (confirmed)."""

    def __init__(self):
        self.messages = []

    def publish(self, message):
        self.messages.append(message)

    def close(self):
        pass


def call_entrypoint(container, method_name: str, *args, **kwargs):
    """What this call of ``method_name`` answers, run as a worker of ``container``.

    nameko's ``entrypoint_hook`` answers with the first worker of that entrypoint to finish,
    which may be another caller's: a consumer's catch-up timer calling ``events_after`` over
    RPC at the same moment made the test read that call's ``[]``. Here the result comes from
    this worker's own ``handle_result``."""
    from eventlet.event import Event
    from nameko.extensions import Entrypoint
    from nameko.testing.utils import get_extension

    entrypoint = get_extension(container, Entrypoint, method_name=method_name)
    if entrypoint is None:
        raise LookupError(f"no entrypoint {method_name!r} on {container.service_name}")
    done = Event()

    def handle_result(worker_ctx, result, exc_info):
        done.send((result, exc_info))
        return result, exc_info

    container.spawn_worker(entrypoint, args, kwargs, handle_result=handle_result)
    result, exc_info = done.wait()
    if exc_info is not None:
        raise exc_info[1].with_traceback(exc_info[2])
    return result


# -- the services' answers against their reply schemas ----------------------------------------

def _replies() -> dict:
    """(service, RPC method) -> the reply schema the gateway dumps its answer through."""
    from services.account import schemas as account
    from services.admission import schemas as admission
    from services.certificate import schemas as certificate
    from services.notification import schemas as notification
    from services.registration import schemas as registration
    from services.scoring import schemas as scoring
    from services.verification import schemas as verification

    many = {"many": True}
    return {
        ("account", "register"): (account.AccountCreatedReply, {}),
        ("account", "change_password"): (account.PasswordChangedReply, {}),
        ("account", "start_password_reset"): (account.PasswordResetStartedReply, {}),
        ("account", "finish_password_reset"): (account.PasswordResetReply, {}),
        ("account", "get_profile"): (account.ProfileReply, {}),
        ("account", "update_profile_section"): (account.ProfileSectionSavedReply, {}),
        ("registration", "list_sessions"): (registration.SessionListReply, many),
        ("registration", "get_session"): (registration.SessionReply, {}),
        ("registration", "load_session"): (registration.SessionReply, {}),
        ("registration", "amend_timetable"): (registration.SessionReply, {}),
        ("registration", "submit_application"): (registration.ApplicationReply, {}),
        ("registration", "get_application"): (registration.ApplicationReply, {}),
        ("registration", "withdraw_commitment"): (registration.ApplicationReply, {}),
        ("registration", "submit_proof"): (registration.ApplicationReply, {}),
        ("registration", "confirm_application"): (registration.ApplicationReply, {}),
        ("registration", "void_registration"): (registration.ApplicationReply, {}),
        ("registration", "candidate_file"): (registration.CandidateFileReply, {}),
        ("registration", "audit_trail"): (registration.AuditRowReply, many),
        ("verification", "raise_enquiry"): (verification.EnquiryReply, {}),
        ("verification", "answer_enquiry"): (verification.EnquiryReply, {}),
        ("verification", "get_enquiries"): (verification.EnquiryReply, many),
        ("verification", "enquiry_queue"): (verification.QueuedEnquiryReply, many),
        ("verification", "manual_queue"): (verification.QueuedCaseReply, many),
        ("verification", "get_case"): (verification.CaseReply, {}),
        ("verification", "decide_manual"): (verification.CaseReply, {}),
        ("verification", "decide_spot_check"): (verification.CaseReply, {}),
        ("verification", "draw_spot_check"): (verification.SpotCheckDrawReply, {}),
        ("verification", "spot_check"): (verification.SpotCheckReply, {}),
        ("verification", "audit_trail"): (verification.AuditRowReply, many),
        ("verification", "list_rules"): (verification.RulesYearReply, many),
        ("verification", "get_rules"): (verification.RulesReply, {}),
        ("verification", "load_rules"): (verification.RulesLoadedReply, {}),
        ("admission", "get_ticket"): (admission.TicketReply, {}),
        ("admission", "check_in"): (admission.CheckInReply, {}),
        ("admission", "room_list"): (admission.RoomListReply, {}),
        ("scoring", "import_scores"): (scoring.ImportedReply, {}),
        ("scoring", "publish_scores"): (scoring.PublishedReply, {}),
        ("scoring", "session_results"): (scoring.SessionResultsReply, {}),
        ("scoring", "candidate_results"): (scoring.CandidateResultsReply, {}),
        ("scoring", "void_scores"): (scoring.ScoresVoidedReply, {}),
        ("certificate", "verify"): (certificate.VerdictReply, {}),
        ("certificate", "revoke"): (certificate.VerdictReply, {}),
        ("certificate", "issuer"): (certificate.IssuerReply, {}),
        ("certificate", "status_list"): (certificate.StatusListReply, {}),
        ("certificate", "my_certificates"): (certificate.MyCertificateReply, many),
        ("certificate", "pickup_notices"): (certificate.PickupNoticeReply, many),
        ("certificate", "notice_paper_pickup"): (certificate.PickupNoticeReply, {}),
        ("certificate", "record_collection"): (certificate.CollectionReply, {}),
        ("notification", "messages"): (notification.MessageReply, many),
        ("notification", "mark_read"): (notification.MessageReply, {}),
    }


REPLIES = None
_REPLY_SCHEMAS: dict = {}  # (service, method): the JSON Schema its reply schema makes
CHECKED: set = set()  # (service, method) whose real answers were checked in this run


def check_reply(service: str, method: str, value):
    """``value`` (a service's answer) as it crosses the broker (JSON), checked against the
    reply schema the gateway dumps it through and the JSON Schema the OpenAPI document says
    for it: every answer of the flows that call the services directly is checked so."""
    global REPLIES
    if REPLIES is None:
        REPLIES = _replies()
    found = REPLIES.get((service, method))
    if found is None:
        return value
    from services.gateway.from_marshmallow import schema_of

    cls, kw = found
    sent = json.loads(json.dumps(value, default=lambda o: o.isoformat()))
    schema = cls(**kw)
    problems = schema.validate(sent)
    assert not problems, f"{service}.{method} answered outside {cls.__name__}: {problems}"
    key = (service, method)
    if key not in _REPLY_SCHEMAS:
        _REPLY_SCHEMAS[key] = schema_of(schema, dump=True)
    validate_json(sent, _REPLY_SCHEMAS[key])
    CHECKED.add((service, method))
    return value
