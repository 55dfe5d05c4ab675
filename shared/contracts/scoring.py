"""Integration events of the scoring service (成绩): imports, publication, rolling validity.

Scores are the authority's until publication: ``ScoresImported`` carries counts only (the
rows stay in scoring's private events); ``SubjectPassed`` and ``QualificationAttained``
are emitted at publication, never before.
"""

from marshmallow import Schema, fields, validate

from shared.contracts import INTEGRATION
from shared.contracts.registration import LEVELS


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


class ScoresImported(Schema):
    session_id = _id()
    import_id = _id()
    sha256 = fields.String(required=True, validate=validate.Length(equal=64))
    rows = fields.Integer(required=True, validate=validate.Range(min=0))
    imported_by = _id()


class ScoresPublished(Schema):
    session_id = _id()
    published_at = fields.AwareDateTime(required=True)
    candidates = fields.Integer(required=True, validate=validate.Range(min=0))


class SubjectPassed(Schema):
    account_id = _id()
    application_id = _id()
    session_id = _id()
    exam_year = fields.Integer(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    subject = _id()
    score = fields.Float(required=True)
    full_marks = fields.Float(required=True)


class PassedSubject(Schema):
    subject = _id()
    exam_year = fields.Integer(required=True)
    session_id = _id()
    score = fields.Float(required=True)


class QualificationAttained(Schema):
    """Every required subject of the level passed within the rolling period."""

    qualification_id = _id()   # one per account and level
    account_id = _id()
    session_id = _id()         # the sitting that completed it
    exam_year = fields.Integer(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    exemption = fields.Dict(allow_none=True, required=True)
    subjects = fields.List(fields.Nested(PassedSubject), required=True)
    candidate = fields.Dict(required=True)  # name, id_type, id_number


class ScoresVoided(Schema):
    """成绩无效: a candidate's scores of one sitting no longer count."""

    account_id = _id()
    application_id = _id()
    session_id = _id()
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    by = _id()
    # ask for an integrity-archive record (诚信档案), e.g. for a false commitment; verification
    # writes it from the candidate on its case for this application
    integrity = fields.Boolean(load_default=False)


class QualificationWithdrawn(Schema):
    """A qualification that rested on voided scores: certificates issued for it are revoked."""

    qualification_id = _id()
    account_id = _id()
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    reason = fields.String(required=True)


for _name, _schema in [("ScoresImported", ScoresImported), ("ScoresPublished", ScoresPublished),
                       ("SubjectPassed", SubjectPassed),
                       ("QualificationAttained", QualificationAttained),
                       ("ScoresVoided", ScoresVoided),
                       ("QualificationWithdrawn", QualificationWithdrawn)]:
    INTEGRATION.register(_name, _schema)
