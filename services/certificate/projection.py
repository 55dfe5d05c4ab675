"""The certificate service's read model: sessions, certificates (by number, token and
status index), downloads, pickup notices and collections. A pure fold of the log."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.certificate.domain import CERTIFICATE
from shared.evolve import Columns
from shared.projection import Projection, Update, Upsert

_BigInt = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData()

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(100), primary_key=True),
    Column("document", JSON, nullable=False),
)

certificates = Table(
    "certificates", metadata,
    Column("certificate_number", String(100), primary_key=True),
    Column("qualification_id", String(100), nullable=False),
    Column("account_id", String(100), nullable=False),
    Column("session_id", String(100), nullable=False),
    Column("exam_year", Integer, nullable=False),
    Column("level", String(4), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("status_index", _BigInt, nullable=False, unique=True),
    Column("status", String(10), nullable=False),  # valid | revoked
    Column("issued_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
    Column("revoke_reason", String(600)),
    Column("collected", Boolean, nullable=False),
    Index("ix_certificates_account", "account_id"),
    Index("ix_certificates_qualification", "qualification_id"),
    Index("ix_certificates_session", "session_id", "status"),
)

# one row per download (a stream's version keys it: the fold needs no counter)
downloads = Table(
    "downloads", metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("stream_version", Integer, primary_key=True),
    Column("certificate_number", String(100), nullable=False),
    Column("format", String(4), nullable=False),
    Column("downloaded_at", String(40), nullable=False),
    Index("ix_downloads_certificate", "certificate_number"),
)

pickup_notices = Table(
    "pickup_notices", metadata,
    Column("notice_id", String(100), primary_key=True),
    Column("session_id", String(100), nullable=False),
    Column("place", String(500), nullable=False),
    Column("start", String(40), nullable=False),
    Column("end", String(40), nullable=False),
    Column("text", Text, nullable=False),
    Column("noticed_at", String(40), nullable=False),
    Column("noticed_by", String(200)),
    Index("ix_pickup_notices_session", "session_id"),
)

collections = Table(
    "collections", metadata,
    Column("certificate_number", String(100), primary_key=True),  # its session: certificates
    Column("account_id", String(100), nullable=False),
    Column("collected_by", String(100), nullable=False),
    Column("by_proxy", Boolean, nullable=False),
    Column("staff", String(100), nullable=False),
    Column("collected_at", String(40), nullable=False),
)


# a Certificate's fields as the certificates table keeps them
CERTIFICATE_COLUMNS = Columns({
    **{name: name for name in ("qualification_id", "account_id", "session_id", "exam_year",
                               "level", "token", "status_index", "status", "issued_at",
                               "revoked_at", "revoke_reason")},
    "candidate": ("name", lambda candidate: candidate["name"]),
    "collection": ("collected", lambda collection: collection is not None),
})


class CertificateProjection(Projection):
    name = "certificate"
    metadata = metadata
    history = "certificate"  # shared/alembic/certificate/

    def handle(self, event):
        p, t = event.payload, event.type
        if t == "SessionRecorded":
            yield Upsert("sessions", {"session_id": p["session_id"]}, {"document": p["document"]})
        elif t in CERTIFICATE:
            yield from self._certificate(event)
        if t == "CertificateDownloaded":
            yield Upsert("downloads", {"stream_id": event.stream_id,
                                       "stream_version": event.stream_version}, {
                "certificate_number": p["certificate_number"], "format": p["format"],
                "downloaded_at": p["downloaded_at"]})
        elif t == "PaperPickupNoticed":
            yield Upsert("pickup_notices", {"notice_id": p["notice_id"]}, {
                "session_id": p["session_id"], "place": p["place"], "start": p["start"],
                "end": p["end"], "text": p["text"],
                "noticed_at": event.metadata.get("occurred_at") or p["start"],
                "noticed_by": event.metadata.get("actor")})
        elif t == "PaperCertificateCollected":
            yield Upsert("collections", {"certificate_number": p["certificate_number"]}, {
                "account_id": p["account_id"],
                "collected_by": p["collected_by"], "by_proxy": p["by_proxy"],
                "staff": p["staff"], "collected_at": p["collected_at"]})

    @staticmethod
    def _certificate(event):
        """The certificate's row: what its evolve (``domain.CERTIFICATE``) takes from the event."""
        values = CERTIFICATE_COLUMNS(CERTIFICATE.changes(event))
        key = {"certificate_number": event.payload["certificate_number"]}
        if event.type in CERTIFICATE.opens:
            yield Upsert("certificates", key, values)
        elif values:
            yield Update("certificates", key, values)
