"""Certificate figures (issue 4, node Y): issuing electronic certificates at a sitting's
scale, and rendering their PDFs.

- ``certificate_issue_10k_s``: seconds for the certificate service's scoring consumer to
  issue certificates for 10,000 qualified candidates: for each ``QualificationAttained``,
  read the qualification's stream, take the next certificate number, sign the Verifiable
  Credential (EdDSA over Ed25519), append the three events (number, private record,
  ``CertificateIssued``) and write the read model, with the tracking record, in the
  consumer's transactions (``TrackingConsumer`` batches of 200, as in production).
  In-process, no broker: the upstream's ``events_after`` is a list in memory. A fresh
  PostgreSQL database. ``detail`` has the per-certificate time and the signing share;
- ``certificate_issue_10k_peak_mb``: the process's peak resident memory (VmHWM, reset
  just before) while it does that;
- ``certificate_pdf_per_s``: certificate PDFs rendered per second (reportlab, the CJK font
  subset, the QR code), as a download does; rendering is on download, not at issuance.

All reported, none has a target.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

from bench.common import Context, Figure, fresh_pg, pg_url, resident_id

QUALIFIED = 10_000
PDFS = 150
SESSION = "2026-shanghai-jiliang"


def _attained(n: int) -> dict:
    """The n-th upstream event as scoring's ``events_after`` answers it."""
    level = "L1" if n % 3 else "L2"
    return {
        "position": n + 1, "stream_id": f"qualification-q{n:06d}", "stream_version": 1,
        "type": "QualificationAttained", "schema_version": 1, "service": "scoring",
        "log_id": "bench-scoring-log",
        "metadata": {"event_id": f"e{n}", "correlation_id": f"c{n}", "causation_id": None,
                     "actor": "service:scoring", "occurred_at": "2026-08-15T01:00:00+00:00"},
        "payload": {
            "qualification_id": f"q{n:06d}", "account_id": f"acc{n:07d}", "session_id": SESSION,
            "exam_year": 2026, "level": level, "exemption": None,
            "subjects": [{"subject": f"{level}-LAW", "exam_year": 2026, "session_id": SESSION,
                          "score": 84.0}],
            "candidate": {"name": "张三", "id_type": "resident_id", "id_number": resident_id(n)},
        },
    }


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _config():
    from joserfc.jwk import OKPKey

    key = OKPKey.generate_key("Ed25519")
    return {"CERTIFICATE_SIGNING_KEY": json.dumps(key.as_dict(private=True)),
            "PUBLIC_BASE_URL": "https://kaowu.example"}


def _issue(ctx: Context) -> Iterator[Figure]:
    from sqlalchemy import func, select

    from services.certificate import credential, keys
    from services.certificate.projection import CertificateProjection, certificates
    from services.certificate.schemas import REGISTRY
    from services.certificate.service import make_prepare, on_scoring_event
    from shared.eventstore.store import open_store
    from shared.tracking import TrackingConsumer

    n = ctx.n(QUALIFIED, 100)
    upstream = [_attained(i) for i in range(n)]

    def fetch(position, limit, types=None):
        # scoring's events_after with a type filter: every event here is QualificationAttained
        found = [e for e in upstream[position:position + limit]
                 if types is None or e["type"] in types]
        if types is None:
            return found
        upto = found[-1]["position"] if len(found) == limit else len(upstream)
        return {"events": found, "upto": max(upto, position), "log_id": "bench-scoring-log"}

    config = _config()
    issuer = keys.issuer_from_config(config)
    # the signing alone, for the share it takes
    t0 = time.perf_counter()
    for i in range(min(n, 2000)):
        issuer.sign(credential.certificate_claims(issuer, {
            "certificate_number": f"JL2026{i:08d}", "exam_year": 2026, "level": "L1",
            "status_index": i, "issued_at": "2026-08-15T01:00:00+00:00",
            "candidate": {"name": "张三", "id_type": "resident_id", "id_number": "x"}}))
    sign_ms = (time.perf_counter() - t0) * 1000 / min(n, 2000)

    with fresh_pg(ctx, "certificate") as db:
        store = open_store(pg_url(db), REGISTRY, projections=[CertificateProjection()],
                           create_database=False)
        signer = SimpleNamespace(issuer=issuer, number_format=keys.number_format_from_config(config))
        consumer = TrackingConsumer(store, "scoring", on_scoring_event,
                                    prepare=make_prepare(config, SimpleNamespace(signer=signer)))
        rss_before = _peak_mb()
        reset = _reset_peak()
        ctx.log(f"issuing {n} certificates (PostgreSQL {db})")
        t0 = time.perf_counter()
        applied = consumer.catch_up(fetch)
        seconds = time.perf_counter() - t0
        peak = _peak_mb()
        with store.engine.connect() as c:
            issued = c.execute(select(func.count()).select_from(certificates)).scalar()
        events = store.head()
        store.engine.dispose()
    if applied != n or issued != n:
        raise RuntimeError(f"{issued} certificates for {n} qualifications ({applied} applied)")
    detail = {"qualified": n, "events_appended": events, "batch": consumer.batch,
              "ms_per_certificate": round(seconds * 1000 / n, 3),
              "certificates_per_s": round(n / seconds, 1),
              "sign_ms_per_credential": round(sign_ms, 3),
              "sign_share": round(sign_ms * n / 1000 / seconds, 3)}
    yield Figure("certificate_issue_10k_s", seconds, "s", detail=detail)
    yield Figure("certificate_issue_10k_peak_mb", peak if reset else max(peak - rss_before, 0),
                 "MB", detail={"rss_before_mb": round(rss_before, 1),
                               "measure": "VmHWM reset before issuing" if reset
                               else "ru_maxrss growth (peak could not be reset)"})


def _pdfs(ctx: Context) -> Iterator[Figure]:
    from services.certificate.pdf import render_certificate

    n = ctx.n(PDFS, 10)
    issued = datetime(2026, 9, 15, 2, tzinfo=UTC).isoformat()

    def one(i):
        return render_certificate({
            "certificate_number": f"JL20261{i:07d}", "name": "欧阳明华", "id_type": "resident_id",
            "id_number": resident_id(i), "level": "L1", "exam_year": 2026, "issued_at": issued},
            f"https://kaowu.example/verify/{i:032d}", "上海市职业能力考试院")

    one(0)  # the font is loaded and registered once per process: not a download's cost
    t0 = time.perf_counter()
    size = 0
    for i in range(n):
        size += len(one(i + 1))
    seconds = time.perf_counter() - t0
    yield Figure("certificate_pdf_per_s", n / seconds, "PDFs/s",
                 detail={"pdfs": n, "ms_per_pdf": round(seconds * 1000 / n, 1),
                         "mean_kb": round(size / n / 1024, 1)})


def run(ctx: Context) -> Iterator[Figure]:
    if ctx.wanted("certificate_issue_10k_s", "certificate_issue_10k_peak_mb"):
        yield from _issue(ctx)
    if ctx.wanted("certificate_pdf_per_s"):
        yield from _pdfs(ctx)
