"""Marshmallow schemas of the notification service: its private events and RPC inputs.

Every event here is private (``public=False``): messages hold personal text and the
recipients' mobiles; nothing downstream consumes them. The integration events this
service reads are those of ``shared.contracts``.
"""

import re

from marshmallow import Schema, fields, validate

from services.notification.domain import NOTICE_STATUSES, SMS_STATUSES, TICKET_STATUSES
from shared.contracts import INTEGRATION, EventRegistry
from shared.fields import Instant, LocalTime, Text


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=200))


def _stamp(**kw):
    return fields.String(validate=validate.Length(min=20, max=40), **kw)


# --- facts copied from upstream -------------------------------------------------------

class RecipientRecorded(Schema):
    """Who to tell: the candidate's name and mobile (手机号), from AccountRegistered."""

    account_id = _id()
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    mobile = fields.String(required=True, validate=validate.Length(min=1, max=20))
    registered_at = fields.String(required=True)


class SessionRecorded(Schema):
    """The exam session as scheduled or amended, whole (``SessionDocument.to_dict()``)."""

    session_id = _id()
    document = fields.Dict(required=True)
    upstream_position = fields.Integer(required=True)  # registration's position it reflects


class TicketRecorded(Schema):
    """An admission ticket (准考证) and where it stands: who gets the scores notice, and
    whether the printing reminder is still wanted."""

    ticket_number = _id()
    account_id = _id()
    session_id = _id()
    application_id = _id()
    status = fields.String(required=True, validate=validate.OneOf(TICKET_STATUSES))
    upstream_position = fields.Integer(required=True)


# --- notices --------------------------------------------------------------------------

class _Notice(Schema):
    notice_id = _id()


class Cause(Schema):
    upstream = fields.String(required=True)
    position = fields.Integer(required=True)
    event_id = fields.String(allow_none=True, load_default=None)


class NoticeScheduled(_Notice):
    kind = _id()
    template = _id()
    account_id = _id()
    session_id = _id()
    application_id = fields.String(allow_none=True, required=True)
    window = _id()
    due_at = _stamp(required=True, allow_none=True)  # None: the session is not known yet
    context = fields.Dict(required=True)  # e.g. the ticket number
    cause = fields.Nested(Cause, required=True)


class NoticeRescheduled(_Notice):
    due_at = _stamp(required=True)
    reason = fields.String(required=True)


class NoticeCancelled(_Notice):
    reason = fields.String(required=True)


class NoticeExpired(_Notice):
    reason = fields.String(required=True)


class NoticeFired(_Notice):
    message_id = _id()
    fired_at = _stamp(required=True)


# --- messages and SMS -----------------------------------------------------------------

class Source(Schema):
    upstream = fields.String(required=True)
    key = fields.String(required=True)  # the upstream event's id, or the notice's


class MessageCreated(Schema):
    """站内信: one message to one candidate."""

    message_id = _id()
    account_id = _id()
    session_id = fields.String(allow_none=True, required=True)
    template = _id()
    title = fields.String(required=True)
    body = fields.String(required=True)
    source = fields.Nested(Source, required=True)
    created_at = _stamp(required=True)


class MessageRead(Schema):
    message_id = _id()
    account_id = _id()
    read_at = _stamp(required=True)


class SmsQueued(Schema):
    """The SMS of a message: the number is looked up when it is sent (the current one)."""

    message_id = _id()
    account_id = _id()
    session_id = fields.String(allow_none=True, required=True)
    template = _id()
    text = fields.String(required=True)
    queued_at = _stamp(required=True)


class SmsSent(Schema):
    message_id = _id()
    attempt = fields.Integer(required=True, validate=validate.Range(min=1))
    provider_id = fields.String(allow_none=True, required=True)
    sent_at = _stamp(required=True)


class SmsAttemptFailed(Schema):
    """A retryable failure: the next attempt is due at ``retry_at`` (exponential backoff)."""

    message_id = _id()
    attempt = fields.Integer(required=True, validate=validate.Range(min=1))
    error = fields.String(required=True)
    retry_at = _stamp(required=True)


class SmsFailed(Schema):
    """Given up: a permanent error (4xx), or the last attempt allowed failed."""

    message_id = _id()
    attempt = fields.Integer(required=True, validate=validate.Range(min=1))
    error = fields.String(required=True)
    permanent = fields.Boolean(required=True)


PRIVATE = EventRegistry()
for _name, _schema in [("RecipientRecorded", RecipientRecorded),
                       ("SessionRecorded", SessionRecorded), ("TicketRecorded", TicketRecorded),
                       ("NoticeScheduled", NoticeScheduled), ("NoticeRescheduled", NoticeRescheduled),
                       ("NoticeCancelled", NoticeCancelled), ("NoticeExpired", NoticeExpired),
                       ("NoticeFired", NoticeFired), ("MessageCreated", MessageCreated),
                       ("MessageRead", MessageRead), ("SmsQueued", SmsQueued),
                       ("SmsSent", SmsSent), ("SmsAttemptFailed", SmsAttemptFailed),
                       ("SmsFailed", SmsFailed)]:
    PRIVATE.register(_name, _schema, public=False)

#: every event type the notification service stores or reads
REGISTRY = EventRegistry().include(INTEGRATION).include(PRIVATE)


# --- RPC inputs -----------------------------------------------------------------------

_ACCOUNT = validate.Regexp(r"[0-9A-Za-z]+\Z", flags=re.ASCII, error="expected an account id")


class AccountRefSchema(Schema):
    account_id = Text(max_length=64, required=True, validate=_ACCOUNT)
    limit = fields.Integer(load_default=100, strict=True, validate=validate.Range(min=1, max=500))


class MarkReadSchema(Schema):
    account_id = Text(max_length=64, required=True, validate=_ACCOUNT)
    message_id = Text(max_length=64, required=True, validate=validate.Regexp(
        r"[0-9a-f]{32}\Z", flags=re.ASCII, error="expected a message id (32 hex digits)"))


class DeliveriesQuerySchema(Schema):
    """Operators: SMS deliveries, optionally of one status, the most recent first."""

    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(SMS_STATUSES))
    limit = fields.Integer(load_default=100, strict=True, validate=validate.Range(min=1, max=1000))


class NoticesQuerySchema(Schema):
    session_id = Text(max_length=100, load_default=None, allow_none=True)
    account_id = Text(max_length=64, load_default=None, allow_none=True, validate=_ACCOUNT)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(NOTICE_STATUSES))
    limit = fields.Integer(load_default=100, strict=True, validate=validate.Range(min=1, max=1000))


class CountsQuerySchema(Schema):
    session_id = Text(max_length=100, load_default=None, allow_none=True)


# -- replies: what the RPC methods answer, as the gateway dumps it (its OpenAPI document is
# made from these; services/gateway/from_marshmallow.py) ---------------------------------


class MessageReply(Schema):
    """站内消息: an in-site message."""

    message_id = fields.String(required=True)
    template, title, body = (fields.String(required=True), fields.String(required=True),
                             fields.String(required=True))
    at, at_local = Instant(required=True), LocalTime(required=True)
    read = fields.Boolean(required=True)
