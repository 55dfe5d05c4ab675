"""A Qualification's evolve (``domain.QUALIFICATION``): the candidate record's fold and the
qualifications row agree for every legal history; withdrawing twice is refused."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring import domain
from services.scoring.projection import QUALIFICATION_COLUMNS, ScoringProjection
from shared.events import StoredEvent
from tests.unit.evolve_check import history, rows

ATTAINED = {"qualification_id": "acc1-L1", "account_id": "acc1", "session_id": "S1",
            "exam_year": 2026, "level": "L1", "exemption": None,
            "subjects": [{"subject": "A", "exam_year": 2026, "session_id": "S1", "score": 71.5}],
            "candidate": {"name": "张三", "id_type": "resident_id", "id_number": "x"}}
PAYLOADS = {"QualificationWithdrawn": lambda q: st.builds(
    lambda reason: {"qualification_id": "acc1-L1", "account_id": "acc1", "level": "L1",
                    "reason": reason}, st.sampled_from(["考试（S1）成绩无效：作弊", "x"]))}


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_fold_and_row_agree(data):
    events, q = history(data, domain.QUALIFICATION, domain.candidate_stream("acc1"),
                        ("QualificationAttained", ATTAINED), PAYLOADS)
    [row] = rows(ScoringProjection(), events)["qualifications"].values()
    for name in QUALIFICATION_COLUMNS:
        assert row[name] == getattr(q, name), name
    assert domain.fold_candidate("acc1", events).qualifications == {"acc1-L1": q}


def test_a_withdrawn_qualification_is_not_withdrawn_again():
    def ev(n, type_, payload):
        return StoredEvent(n, "candidate-acc1", n, type_, 1, payload, {})

    withdrawn = {"qualification_id": "acc1-L1", "account_id": "acc1", "level": "L1",
                 "reason": "x"}
    with pytest.raises(ValueError, match="cannot follow status 'withdrawn'"):
        domain.fold_candidate("acc1", [ev(1, "QualificationAttained", ATTAINED),
                                       ev(2, "QualificationWithdrawn", withdrawn),
                                       ev(3, "QualificationWithdrawn", withdrawn)])
