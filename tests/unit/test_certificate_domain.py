"""The certificate aggregate: numbering, once per qualification, revocation, downloads and
paper collection. Pure: events in, events out, no I/O."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.certificate import domain
from services.certificate.domain import fold, qualification_stream
from services.certificate.schemas import (
    REGISTRY,
    CollectionSchema,
    PickupNoticeSchema,
    VerifySchema,
)
from shared.clock import SHANGHAI, iso
from shared.errors import NotFound, Refused, Unauthorized, ValidationFailed
from shared.events import StoredEvent
from shared.service import load
from shared.session import Window

NOW = datetime(2026, 8, 20, 10, 0, tzinfo=SHANGHAI)
WINDOW = Window("certificates", datetime(2026, 9, 15, tzinfo=SHANGHAI),
                datetime(2027, 12, 31, 23, 59, 59, tzinfo=SHANGHAI))
HOLDER = {"name": "王建国", "id_type": "resident_id", "id_number": "310104198805123455"}


def attained(qid="q-1", account="acc-1", level="L1", year=2026, candidate=None):
    return {"qualification_id": qid, "account_id": account, "session_id": "2026-shanghai-jiliang",
            "exam_year": year, "level": level, "exemption": None,
            "subjects": [{"subject": "L1-LAW", "exam_year": year, "session_id": "s", "score": 90}],
            "candidate": dict(candidate or HOLDER)}


class Log:
    """Events as a store would keep them: validated against their schemas, versioned."""

    def __init__(self):
        self.streams: dict[str, list[StoredEvent]] = {}
        self.numbers: set[str] = set()

    def append(self, events):
        for e in events:
            REGISTRY.validate(e.type, e.payload)
            stream = self.streams.setdefault(e.stream_id, [])
            stream.append(StoredEvent(0, e.stream_id, len(stream) + 1, e.type, 1, e.payload, {}))
            if e.type == "CertificateRecorded":
                self.numbers.add(e.payload["certificate_number"])
        return events

    def q(self, qid="q-1"):
        return fold(self.streams.get(qualification_stream(qid), []))

    @property
    def last_seq(self):
        return len(self.streams.get(domain.NUMBERS_STREAM, []))

    def issue(self, a, fmt=domain.DEFAULT_NUMBER_FORMAT, now=NOW, token=None):
        return self.append(domain.issue(
            self.q(a["qualification_id"]), a, last_seq=self.last_seq, number_format=fmt,
            taken=self.numbers.__contains__, token=token or f"tok-{self.last_seq:013d}-xyz",
            now=now, credential_for=lambda facts: (f"jwt-of-{facts['certificate_number']}", "kid-1")))


def types(events):
    return [e.type for e in events]


# --- numbers --------------------------------------------------------------------------


def test_numbers_follow_one_sequence_and_the_format():
    log = Log()
    log.issue(attained("q-1", level="L1"))
    log.issue(attained("q-2", level="L2"))
    assert [c.certificate_number for qid in ("q-1", "q-2") for c in log.q(qid).certificates] == \
        ["JL202610000001", "JL202620000002"]
    assert [c.status_index for qid in ("q-1", "q-2") for c in log.q(qid).certificates] == [0, 1]


def test_a_custom_format_and_a_format_change_never_reuse_a_number():
    log = Log()
    log.issue(attained("q-1"), fmt="{year}{seq}")  # 20261
    log.issue(attained("q-2"), fmt="{year}{seq}")  # 20262
    assert [log.q(q).certificates[0].certificate_number for q in ("q-1", "q-2")] == \
        ["20261", "20262"]
    # a later format that would hand out a number again skips it (sequence 20261 -> "20261")
    seq, number, skipped = domain.allocate_number(20260, "{seq}", 2026, "L1",
                                                  log.numbers.__contains__)
    assert (seq, number, skipped) == (20263, "20263", [20261, 20262])


def test_a_taken_number_is_skipped_and_recorded():
    log = Log()
    log.numbers.add("JL202610000001")  # e.g. issued under an earlier format
    events = log.issue(attained("q-1"))
    assert types(events) == ["CertificateNumberAllocated", "CertificateNumberAllocated",
                             "CertificateRecorded", "CertificateIssued"]
    assert events[0].payload == {"seq": 1, "certificate_number": "JL202610000001",
                                 "qualification_id": None}
    assert log.q().certificates[0].certificate_number == "JL202610000002"
    assert log.q().certificates[0].status_index == 1


@pytest.mark.parametrize("fmt", ["", "JL{year}", "{seq}{nope}", "{seq:d} {", "X" * 120 + "{seq}",
                                 " {seq}"])
def test_bad_number_formats_are_refused(fmt):
    with pytest.raises(ValueError):
        domain.check_number_format(fmt)


def test_good_number_formats():
    assert domain.check_number_format("{level}-{year}-{seq:06d}") == "{level}-{year}-{seq:06d}"
    assert domain.format_number("{level}-{year}-{seq:06d}", 7, 2026, "L2") == "L2-2026-000007"


# --- issuance -------------------------------------------------------------------------


def test_issued_once_per_qualification():
    log = Log()
    events = log.issue(attained())
    assert types(events) == ["CertificateNumberAllocated", "CertificateRecorded",
                             "CertificateIssued"]
    issued = events[-1].payload
    assert issued == {"certificate_number": "JL202610000001", "account_id": "acc-1",
                      "qualification_id": "q-1", "session_id": "2026-shanghai-jiliang",
                      "level": "L1", "issued_at": iso(NOW), "status_index": 0}
    recorded = events[1].payload
    assert recorded["credential"] == "jwt-of-JL202610000001" and recorded["kid"] == "kid-1"
    assert recorded["candidate"] == HOLDER
    assert log.issue(attained()) == []  # the same qualification again: nothing
    assert len(log.q().certificates) == 1 and log.last_seq == 1


def test_a_withdrawn_qualification_attained_again_gets_a_new_number():
    log = Log()
    log.issue(attained())
    log.append(domain.withdraw(log.q(), "成绩无效", NOW))
    assert log.q().active is None
    log.issue(attained(), now=NOW + timedelta(days=400))
    first, second = log.q().certificates
    assert first.revoked and not second.revoked
    assert second.certificate_number == "JL202610000002" != first.certificate_number


def test_an_attainment_without_the_holders_document_is_refused():
    log = Log()
    with pytest.raises(Refused) as exc:
        log.issue(attained(candidate={"name": "王建国", "id_type": "resident_id", "id_number": ""}))
    assert "id_number" in exc.value.message and log.last_seq == 0


# --- revocation -----------------------------------------------------------------------


def test_revocation_is_final_and_names_when_and_why():
    log = Log()
    log.issue(attained())
    number = log.q().certificates[0].certificate_number
    events = log.append(domain.revoke(log.q(), number, "证书信息有误", NOW))
    assert events[0].payload == {"certificate_number": number, "account_id": "acc-1",
                                 "reason": "证书信息有误", "revoked_at": iso(NOW), "status_index": 0}
    cert = log.q().certificates[0]
    assert cert.revoked and cert.revoke_reason == "证书信息有误"
    with pytest.raises(Refused) as exc:
        domain.revoke(log.q(), number, "again", NOW)
    assert "already revoked on 2026-08-20 10:00:00" in exc.value.message
    with pytest.raises(NotFound):
        domain.revoke(log.q(), "JL-nope", "x", NOW)


def test_withdrawal_revokes_the_valid_certificate_only():
    log = Log()
    assert domain.withdraw(None, "no such qualification yet", NOW) == []
    log.issue(attained())
    events = log.append(domain.withdraw(log.q(), "虚假承诺，成绩无效", NOW))
    assert types(events) == ["CertificateRevoked"]
    assert events[0].payload["reason"].endswith("虚假承诺，成绩无效")
    assert domain.withdraw(log.q(), "twice", NOW) == []


# --- downloads ------------------------------------------------------------------------


def test_download_only_by_the_holder_once_the_window_opened():
    log = Log()
    log.issue(attained())
    number = log.q().certificates[0].certificate_number
    with pytest.raises(Refused) as exc:
        domain.download(log.q(), number, "acc-1", "pdf", NOW, WINDOW)
    assert exc.value.fields["window"] == "certificates"
    assert "证书" in exc.value.message and "2026-09-15 00:00:00" in exc.value.message
    with pytest.raises(Refused) as exc:
        domain.download(log.q(), number, "acc-1", "pdf", NOW, None)
    assert exc.value.fields["window"] == "certificates"
    opened = WINDOW.start
    with pytest.raises(Unauthorized):
        domain.download(log.q(), number, "acc-2", "pdf", opened, WINDOW)
    events = log.append(domain.download(log.q(), number, "acc-1", "vc", opened, WINDOW))
    assert events[0].payload == {"certificate_number": number, "account_id": "acc-1",
                                 "format": "vc", "downloaded_at": iso(opened)}
    assert log.q().certificates[0].downloads == [{"format": "vc", "at": iso(opened)}]
    # after the window's end the certificate stays downloadable
    assert domain.download(log.q(), number, "acc-1", "pdf", WINDOW.end + timedelta(days=30), WINDOW)
    log.append(domain.revoke(log.q(), number, "撤销", opened))
    with pytest.raises(Refused):
        domain.download(log.q(), number, "acc-1", "pdf", opened, WINDOW)


# --- paper certificates ---------------------------------------------------------------


NOTICE = {"session_id": "2026-shanghai-jiliang", "place": "上海市职业能力考试院",
          "start": datetime(2026, 10, 8, 9, 0, tzinfo=SHANGHAI),
          "end": datetime(2026, 10, 31, 16, 0, tzinfo=SHANGHAI), "text": "凭身份证原件领取"}
NOTICES = [{"start": iso(NOTICE["start"]), "end": iso(NOTICE["end"])}]
AT_COUNTER = datetime(2026, 10, 9, 10, 0, tzinfo=SHANGHAI)


def collection(**kw):
    return {"certificate_number": "JL202610000001", "collected_by": None,
            "id_type": "resident_id", "id_number": "310104198805123455", "by_proxy": False, **kw}


def test_pickup_notice():
    events = domain.notice_pickup(True, NOTICE, "n-1")
    assert events[0].payload["notice_id"] == "n-1"
    REGISTRY.validate("PaperPickupNoticed", events[0].payload)
    with pytest.raises(Refused):
        domain.notice_pickup(False, NOTICE, "n-2")
    with pytest.raises(ValidationFailed):
        domain.notice_pickup(True, {**NOTICE, "end": NOTICE["start"]}, "n-3")


def test_collection_by_the_holder_checks_the_document_once():
    log = Log()
    log.issue(attained())
    with pytest.raises(Refused) as exc:  # before any notice
        domain.collect(log.q(), collection(), "staff-9", AT_COUNTER, [])
    assert "领证通知" in exc.value.message
    with pytest.raises(Refused) as exc:  # before the pickup period begins
        domain.collect(log.q(), collection(), "staff-9", NOTICE["start"] - timedelta(hours=1),
                       NOTICES)
    assert exc.value.fields["opens"] == iso(NOTICE["start"])
    with pytest.raises(Refused) as exc:  # another person's document
        domain.collect(log.q(), collection(id_number="31010119761230001X"), "staff-9",
                       AT_COUNTER, NOTICES)
    assert exc.value.fields == {"id_number": "does not match the holder"}
    # a lower-case x or full-width digits are the same document
    events = log.append(domain.collect(
        log.q(), collection(id_number="３１０１０４１９８８０５１２３４５５"), "staff-9",
        AT_COUNTER, NOTICES))
    assert types(events) == ["CollectorIdentified", "PaperCertificateCollected"]
    assert events[1].payload == {"certificate_number": "JL202610000001", "account_id": "acc-1",
                                 "collected_by": "王建国", "by_proxy": False, "staff": "staff-9",
                                 "collected_at": iso(AT_COUNTER)}
    with pytest.raises(Refused) as exc:
        domain.collect(log.q(), collection(), "staff-9", AT_COUNTER, NOTICES)
    assert exc.value.fields == {"certificate_number": "already collected"}
    assert "王建国" in exc.value.message


def test_collection_by_proxy_records_the_proxy():
    log = Log()
    log.issue(attained())
    with pytest.raises(ValidationFailed):  # the holder's own card is not the proxy's
        domain.collect(log.q(), collection(by_proxy=True, collected_by="李敏"), "s", AT_COUNTER,
                       NOTICES)
    events = log.append(domain.collect(
        log.q(), collection(by_proxy=True, collected_by="李敏", id_number="31011519920315002X"),
        "staff-9", AT_COUNTER, NOTICES))
    assert events[1].payload["collected_by"] == "李敏" and events[1].payload["by_proxy"] is True
    assert events[0].payload["id_number"] == "31011519920315002X"
    assert log.q().certificates[0].collection["by_proxy"] is True


def test_a_revoked_certificate_is_not_handed_out():
    log = Log()
    log.issue(attained())
    log.append(domain.revoke(log.q(), "JL202610000001", "撤销", NOW))
    with pytest.raises(Refused) as exc:
        domain.collect(log.q(), collection(), "s", AT_COUNTER, NOTICES)
    assert exc.value.fields == {"certificate_number": "revoked"}


# --- inputs and helpers ---------------------------------------------------------------


def test_verify_takes_exactly_one_key():
    assert load(VerifySchema(), {"token": "abc"}) == {"token": "abc"}
    for bad in ({}, {"token": "a", "certificate_number": "b"}, {"certificate_number": ""}):
        with pytest.raises(ValidationFailed):
            load(VerifySchema(), bad)


def test_collection_and_notice_inputs():
    with pytest.raises(ValidationFailed) as exc:
        load(CollectionSchema(), collection(by_proxy=True))
    assert "collected_by" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        load(PickupNoticeSchema(), {**NOTICE, "start": iso(NOTICE["end"]), "end": iso(NOTICE["start"])})
    assert "end" in exc.value.fields
    got = load(PickupNoticeSchema(), {**NOTICE, "start": iso(NOTICE["start"]),
                                      "end": iso(NOTICE["end"]), "text": "第一行\n第二行"})
    assert got["text"] == "第一行\n第二行"
    with pytest.raises(ValidationFailed):
        load(PickupNoticeSchema(), {**NOTICE, "start": iso(NOTICE["start"]),
                                    "end": iso(NOTICE["end"]), "text": "bell\x07"})


@pytest.mark.parametrize("name, masked", [("张三", "张*"), ("王建国", "王*国"), ("欧阳明华", "欧**华"),
                                          ("李", "李")])
def test_mask_name(name, masked):
    assert domain.mask_name(name) == masked


# --- properties -----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["attain", "withdraw", "revoke"]),
                          st.integers(min_value=0, max_value=4)), max_size=40))
def test_numbers_are_unique_and_one_certificate_is_valid_at_a_time(steps):
    log = Log()
    for action, n in steps:
        qid = f"q-{n}"
        if action == "attain":
            log.issue(attained(qid, account=f"acc-{n}", level="L1" if n % 2 else "L2"))
        elif action == "withdraw":
            log.append(domain.withdraw(log.q(qid), "withdrawn", NOW))
        elif log.q(qid) is not None and log.q(qid).active is not None:
            log.append(domain.revoke(log.q(qid), log.q(qid).active.certificate_number, "r", NOW))
    certs = [c for n in range(5) if log.q(f"q-{n}") for c in log.q(f"q-{n}").certificates]
    numbers = [c.certificate_number for c in certs]
    indices = sorted(c.status_index for c in certs)
    assert len(set(numbers)) == len(numbers)
    assert indices == list(range(len(certs)))  # no gaps, no reuse: one sequence
    for n in range(5):
        q = log.q(f"q-{n}")
        if q is not None:
            assert sum(not c.revoked for c in q.certificates) <= 1
