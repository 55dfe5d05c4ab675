"""报考条件 per exam year (issue 16 "Rules per exam year", issue 17 item 6): the rule book
aggregate (versions loaded by the authority over the shipped default), and a case opened
where a year has no rules: to proof and the manual check, never left without a case."""

from datetime import date, datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registration.domain import require_eligibility_rules
from services.verification import domain
from services.verification.rules import (
    RULES_DIR,
    check_rules_document,
    document_digest,
    load_rules,
    shipped_rules,
)
from services.verification.schemas import REGISTRY
from shared.clock import SHANGHAI
from shared.errors import Refused
from shared.events import StoredEvent
from shared.session import reference_session
from tests.unit.test_verification_domain import CLEAN, Stream, submitted

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
CUTOFF_2027 = date(2027, 12, 31)
TEXT_2026 = (RULES_DIR / "2026.yml").read_text("utf-8")
TEXT_2027 = TEXT_2026.replace("exam_year: 2026", "exam_year: 2027")


def doc_2027(bachelor_years=3, levels=("L1", "L2")):
    doc = check_rules_document(TEXT_2027, 2027)
    doc["levels"]["L1"]["years"]["本科"] = {"science_engineering": bachelor_years,
                                           "other": bachelor_years + 1}
    doc["levels"] = {k: v for k, v in doc["levels"].items() if k in levels}
    return check_rules_document(doc, 2027)


def stored(events, start=1):
    out = []
    for i, e in enumerate(events, start):
        REGISTRY.validate(e.type, e.payload)
        out.append(StoredEvent(position=i, stream_id=e.stream_id, stream_version=i, type=e.type,
                               schema_version=1, payload=e.payload,
                               metadata={"event_id": f"e{i}", "occurred_at": NOW.isoformat()}))
    return out


def load(book, document, by="authority-01", reason="2027年度考试公告", shipped=None,
         session_levels=None):
    return domain.load_rules_version(book, shipped, document, yaml.safe_dump(document), by,
                                     reason, NOW, session_levels or {})


# --- a case where the year has no rules ---------------------------------------------------


def opened_without(rules, **kw):
    payload = submitted(**kw)
    payload["session_id"] = "2027-shanghai"
    REGISTRY.validate("ApplicationSubmitted", payload)
    return Stream(domain.open_case(payload, rules, CLEAN, CUTOFF_2027, NOW, 2027))


def test_a_pledge_in_a_year_without_rules_opens_the_case_and_goes_to_manual_check():
    s = opened_without(None)
    assert s.types == ["CaseOpened", "AutoCheckFailed", "ProofRequested"]
    opened, failed, requested = s.events
    assert opened.payload["rules"] is None
    assert failed.payload["rule"] == "2027.no-eligibility-rules"
    assert "2027年度没有" in failed.payload["reason"]
    assert failed.payload["reason"].startswith("2027年度没有L1级别的报考条件，无法自动核查")
    assert requested.payload["cause"] == "auto_check_failed"
    assert requested.payload["reason"] == failed.payload["reason"]
    assert s.case.status == "awaiting_proof"


def test_rules_without_the_applications_level_count_as_none():
    only_l1 = domain.rules_from_document(doc_2027(levels=("L1",)), 1)
    s = opened_without(only_l1, level="L2", work=[{**submitted()["candidate"]["work"][0]}])
    assert s.events[1].payload["rule"] == "2027.no-eligibility-rules"
    assert "L2" in s.events[1].payload["reason"]
    assert s.events[0].payload["rules"] == only_l1.ref  # the rules in force are recorded


@pytest.mark.parametrize("kw", [{"commitment": False},
                                {"exemption": {"subject": "计量法律法规及综合知识",
                                               "ground": "senior_title"}}])
def test_without_rules_proof_is_asked_for_as_ever_when_no_auto_check_runs(kw):
    s = opened_without(None, **kw)
    assert s.types == ["CaseOpened", "ProofRequested"]
    assert s.case.status == "awaiting_proof"


def test_a_case_records_the_version_it_was_opened_under():
    rules = domain.rules_from_document(doc_2027(), 2)
    s = opened_without(rules)
    assert s.events[0].payload["rules"] == {"exam_year": 2027, "version": 2,
                                            "digest": document_digest(doc_2027())}
    assert s.case.rules == s.events[0].payload["rules"]
    assert s.types == ["CaseOpened", "AutoCheckPassed"]


# --- the rule book ------------------------------------------------------------------------


def test_loading_versions_of_a_year():
    first = load(None, doc_2027())
    assert [e.type for e in first] == ["EligibilityRulesLoaded"]
    assert first[0].stream_id == "rules-2027"
    assert first[0].payload["version"] == 1 and first[0].payload["replaces"] is None
    book = domain.fold_rule_book(stored(first))
    assert book.rules.version == 1 and book.rules.exam_year == 2027
    assert load(book, doc_2027()) == []  # the same rules again: nothing new
    second = load(book, doc_2027(bachelor_years=2))
    assert second[0].payload["version"] == 2
    assert second[0].payload["replaces"] == book.rules.ref
    book = domain.fold_rule_book(stored(first + second))
    assert [v["version"] for v in book.versions] == [1, 2]
    assert book.rules.get("2027.L1.本科.science_engineering").years == 2
    assert domain.rules_in_force(book, None) is book.rules


def test_the_shipped_file_is_version_0_until_a_version_is_loaded():
    shipped = shipped_rules(2026)
    assert shipped is load_rules(2026) and shipped.version == 0
    assert domain.rules_in_force(None, shipped) is shipped
    assert domain.rules_in_force(None, None) is None
    same = check_rules_document(TEXT_2026, 2026)
    assert load(None, same, shipped=shipped) == []  # the shipped rules, loaded: unchanged
    changed = dict(same, education_levels=[*same["education_levels"]])
    changed["levels"] = {**same["levels"], "L2": {"name": "二级", "years": {"大专": 1}}}
    [event] = load(None, check_rules_document(changed, 2026), shipped=shipped)
    assert event.payload["version"] == 1 and event.payload["replaces"]["version"] == 0
    assert shipped_rules(1999) is None


def test_a_version_dropping_a_level_a_session_offers_is_refused():
    book = domain.fold_rule_book(stored(load(None, doc_2027())))
    with pytest.raises(Refused) as exc:
        load(book, doc_2027(levels=("L1",)), session_levels={"2027-shanghai": {"L1", "L2"}})
    assert "2027-shanghai: L2" in exc.value.message and exc.value.error_code == "levels_missing"
    assert load(book, doc_2027(levels=("L1",)), session_levels={"other": {"L1"}})


def test_the_fold_refuses_moves_off_the_chart():
    one = load(None, doc_2027())
    two = load(domain.fold_rule_book(stored(one)), doc_2027(bachelor_years=1))
    with pytest.raises(ValueError, match="version 2 after 0"):
        domain.fold_rule_book(stored(two))
    other_year = load(None, check_rules_document(TEXT_2026, 2026))
    other_year[0].payload["version"] = 2
    with pytest.raises(ValueError, match="rules of 2026 in the stream of 2027"):
        domain.fold_rule_book(stored(one + other_year))
    assert domain.fold_rule_book([]) is None


@settings(deadline=None)  # a few documents checked per example; slow on a busy machine
@given(st.lists(st.integers(0, 4), min_size=1, max_size=8))
def test_any_sequence_of_loads_keeps_versions_in_sequence_and_the_last_in_force(years):
    events, book, distinct = [], None, 0
    for n in years:
        new = load(book, doc_2027(bachelor_years=n))
        if new:
            distinct += 1
        events += new
        book = domain.fold_rule_book(stored(events))
    assert [v["version"] for v in book.versions] == list(range(1, distinct + 1))
    assert book.rules.get("2027.L1.本科.science_engineering").years == years[-1]
    # a change is a version; loading what is in force is none
    assert distinct == 1 + sum(1 for a, b in zip(years, years[1:], strict=False) if a != b)


# --- registration: a session of a year without rules is refused at load -------------------


def test_a_session_is_refused_without_rules_for_its_year_or_a_level():
    doc = reference_session()
    require_eligibility_rules(doc, ["L1", "L2"])
    with pytest.raises(Refused) as exc:
        require_eligibility_rules(doc, None)
    assert exc.value.error_code == "no_rules" and "2026年度没有报考条件" in exc.value.message
    assert "kaowu rules load 2026" in exc.value.message
    with pytest.raises(Refused) as exc:
        require_eligibility_rules(doc, ["L1"])
    assert "L2" in exc.value.fields["levels"]
