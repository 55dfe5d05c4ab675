"""Integration events of the certificate service (证书): issuance, downloads, paper pickup,
revocation. The signed credential itself stays in the certificate service's log."""

from marshmallow import Schema, fields, validate

from shared.contracts import INTEGRATION
from shared.contracts.registration import LEVELS


def _id():
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


class _Certificate(Schema):
    certificate_number = _id()
    account_id = _id()


class CertificateIssued(_Certificate):
    qualification_id = _id()
    session_id = _id()
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    issued_at = fields.AwareDateTime(required=True)
    status_index = fields.Integer(required=True, validate=validate.Range(min=0))


class CertificateDownloaded(_Certificate):
    format = fields.String(required=True, validate=validate.OneOf(["pdf", "vc"]))
    downloaded_at = fields.AwareDateTime(required=True)


class PaperPickupNoticed(Schema):
    """领取纸质证书通知: where and when paper certificates of a session can be collected."""

    notice_id = _id()
    session_id = _id()
    place = fields.String(required=True, validate=validate.Length(min=1, max=500))
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class PaperCertificateCollected(_Certificate):
    collected_by = fields.String(required=True, validate=validate.Length(min=1, max=100))  # name
    by_proxy = fields.Boolean(required=True)
    staff = _id()
    collected_at = fields.AwareDateTime(required=True)


class CertificateRevoked(_Certificate):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    revoked_at = fields.AwareDateTime(required=True)
    status_index = fields.Integer(required=True, validate=validate.Range(min=0))


for _name, _schema in [("CertificateIssued", CertificateIssued),
                       ("CertificateDownloaded", CertificateDownloaded),
                       ("PaperPickupNoticed", PaperPickupNoticed),
                       ("PaperCertificateCollected", PaperCertificateCollected),
                       ("CertificateRevoked", CertificateRevoked)]:
    INTEGRATION.register(_name, _schema)
