"""A Certificate's evolve (``domain.CERTIFICATE``): for random legal histories the fold and
the certificates row agree on the status and every field they share."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.certificate import domain
from services.certificate.projection import CERTIFICATE_COLUMNS, CertificateProjection
from shared.events import StoredEvent
from tests.unit.evolve_check import history, rows

NUMBER = {"certificate_number": "JL2026L1000001", "qualification_id": "Q1", "account_id": "acc1",
          "session_id": "S1"}
OPENING = ("CertificateRecorded", {
    **NUMBER, "exam_year": 2026, "level": "L1",
    "candidate": {"name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X"},
    "status_index": 7, "issued_at": "2026-09-01T10:00:00+08:00", "token": "t" * 32,
    "credential": "jwt", "kid": "k1"})


def with_(**drawn):
    return lambda cert: st.fixed_dictionaries(drawn).map(lambda d: {**NUMBER, **d})


PAYLOADS = {
    "CertificateRevoked": with_(reason=st.sampled_from(["成绩无效", "资格撤销"]),
                                revoked_at=st.just("t"), status_index=st.just(7)),
    "CertificateDownloaded": with_(format=st.sampled_from(["pdf", "vc"]),
                                   downloaded_at=st.just("t")),
    "PaperCertificateCollected": with_(collected_by=st.just("张三"), by_proxy=st.booleans(),
                                       staff=st.just("s1"), collected_at=st.just("t")),
}


def test_every_step_of_the_evolve_has_a_payload_here():
    assert set(domain.CERTIFICATE) - domain.CERTIFICATE.opens == set(PAYLOADS)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fold_and_row_agree(data):
    events, cert = history(data, domain.CERTIFICATE, "qualification-Q1", OPENING, PAYLOADS)
    [row] = rows(CertificateProjection(), events)["certificates"].values()
    assert row["name"] == cert.candidate["name"]
    assert row["collected"] == (cert.collection is not None)
    for name in set(CERTIFICATE_COLUMNS) - {"candidate", "collection"}:
        assert row[name] == getattr(cert, name), name
    # the qualification's fold sees the same certificate
    [folded] = domain.fold(events).certificates
    assert folded == cert


def test_the_fold_refuses_a_move_the_chart_does_not_have():
    def ev(n, type_, payload):
        return StoredEvent(n, "qualification-Q1", n, type_, 1, payload, {})

    revoked = {**NUMBER, "reason": "x", "revoked_at": "t", "status_index": 7}
    with pytest.raises(ValueError, match="cannot follow status 'revoked'"):
        domain.fold([ev(1, *OPENING), ev(2, "CertificateRevoked", revoked),
                     ev(3, "CertificateDownloaded", {**NUMBER, "format": "pdf",
                                                     "downloaded_at": "t"})])
