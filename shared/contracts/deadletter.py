"""Dead letters (死信): an upstream event a consumer's handler failed on, again and again.

Private to the consuming service (``public=False``): the copy of the upstream event stays in
the consumer's own log, where the tracking record moved past it in the same transaction,
so the consumer is not stuck and nothing is lost. ``kaowu dlq replay`` applies it again
once the cause is fixed (``DeadLetterReplayed``).
"""

from marshmallow import Schema, fields, validate

from shared.contracts import INTEGRATION


class EventDeadLettered(Schema):
    upstream = fields.String(required=True, validate=validate.Length(min=1, max=100))
    position = fields.Integer(required=True, validate=validate.Range(min=1))
    type = fields.String(required=True)
    error = fields.String(required=True)
    attempts = fields.Integer(required=True)
    event = fields.Dict(required=True)  # the upstream event as received (public view)


class DeadLetterReplayed(Schema):
    upstream = fields.String(required=True, validate=validate.Length(min=1, max=100))
    position = fields.Integer(required=True, validate=validate.Range(min=1))
    outcome = fields.String(required=True, validate=validate.OneOf(["applied", "refused"]))
    reason = fields.String(load_default="")


INTEGRATION.register("EventDeadLettered", EventDeadLettered, public=False)
INTEGRATION.register("DeadLetterReplayed", DeadLetterReplayed, public=False)
