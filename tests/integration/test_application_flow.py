"""The seed's chart from 网上报名 (E) to 核对确认 (T), over real RabbitMQ and PostgreSQL,
with account, registration and verification running and a controllable clock.

One season, six candidates, every edge of E..T:

- 王建国, 李敏: commitment (G), auto check passes (I→J), into the draw (J→Q);
- 周婷: commitment, but 大专 needs 4 years: auto check fails (I→K→L), proof (L→M), passes (M→N→Q);
- 陈静: no commitment (F→H→L), proof, manual pass (N→Q);
- 刘洋: no commitment, rejected (M→O), proof again, rejected for good (O→P);
- 张伟: a live integrity record bars the commitment; applies without, never sends proof: lapses.
The draw takes half of the four passed cases: one passes (Q→R→T), one is rejected (Q→S→L)
and goes back through proof and manual check before confirming; of the two not drawn
(passed through), one confirms and one lets confirmation close (ApplicationLapsed).
"""

import base64
import time
from datetime import datetime

import pytest
from nameko.testing.services import entrypoint_hook

from services.account.service import AccountService
from services.registration import integrity
from services.registration.projection import RegistrationProjection
from services.registration.service import RegistrationService
from services.verification.projection import VerificationProjection
from services.verification.service import VerificationService
from shared.clock import SHANGHAI, ControlledClock
from shared.dependencies import EventStoreProvider
from shared.errors import NotFound, Refused, Unauthorized, ValidationFailed
from shared.projection import snapshot
from shared.session import REFERENCE_SESSION_PATH
from tests.integration.test_account_flow import jpeg
from tests.support import CATCH_UP, DEADLINE, check_reply, wait_for

pytestmark = pytest.mark.integration

SESSION = "2026-shanghai-jiliang"
PDF = base64.b64encode(b"%PDF-1.4\n% proof of metrology work\n%%EOF\n").decode()
STAFF = {"staff_id": "staff-01", "registration_point": "2916"}
AUTHORITY = {"staff_id": "authority-01"}


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


PEOPLE = {
    "wang": ("王建国", "310104198805123455", "本科", "102471201005001234", "science_engineering",
             "2012-01-01", True),
    "li": ("李敏", "31011519920315002X", "硕士", "103561201702000045", "science_engineering",
           "2017-04-01", True),
    "zhou": ("周婷", "310104199502210062", "大专", "140671201606001105", "science_engineering",
             "2024-01-01", True),
    "chen": ("陈静", "320102199007080044", "本科", "102511201205003317", "other", "2012-08-01", False),
    "liu": ("刘洋", "31010119761230001X", "博士", "102481200501000027", "science_engineering",
            "2005-04-01", False),
    "zhang": ("张伟", "310110198511200037", "大专", "102521200606000512", "science_engineering",
              "2006-08-01", True),
}


class Season:
    def __init__(self, runner, clock):
        self.runner, self.clock = runner, clock
        self.accounts = {}

    def container(self, name):
        return next(c for c in self.runner.containers if c.service_name == name)

    def store(self, name):
        return next(d for d in self.container(name).dependencies
                    if isinstance(d, EventStoreProvider)).store

    def call(self, service, method, *args):
        with entrypoint_hook(self.container(service), method) as hook:
            return check_reply(service, method, hook(*args))

    def wait(self, predicate, timeout=15):
        return wait_for(predicate, timeout)

    def candidate(self, key):
        name, id_number, level, cert, category, work_start, _ = PEOPLE[key]
        pinyin = key
        account_id = self.call("account", "register", {
            "name": name, "id_type": "resident_id", "id_number": id_number,
            "mobile": f"139{abs(hash(key)) % 10**8:08d}", "username": f"{pinyin}_2026",
            "password": "pass2026word"})["account_id"]
        birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        gender = "M" if int(id_number[16]) % 2 else "F"
        sections = {
            "photo": {"jpeg_base64": jpeg()},
            "basic": {"gender": gender, "birth_date": birth, "ethnicity": "汉族"},
            "education": {"education": [{"level": level, "school": "某大学", "major": "测控",
                                         "major_category": category, "graduated_on": "2005-03-31",
                                         "certificate_no": cert}], "degrees": []},
            "work": {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                                  "start": work_start, "end": None, "metrology": True}]},
            "contact": {"email": f"{pinyin}@example.com", "address": "上海市徐汇区"},
        }
        for section, data in sections.items():
            self.call("account", "update_profile_section", account_id, section, data)
        self.accounts[key] = account_id
        return account_id

    def integrity_known(self, key):
        """Registration's read model of the integrity archive (诚信档案, fed by verification's
        events) has a live record of the person."""
        with self.store("registration").engine.connect() as conn:
            return integrity.live(conn, "resident_id", PEOPLE[key][1], self.clock.now().date())

    def known_complete(self, key):
        def check():
            try:
                return self.call("registration", "get_candidate", self.accounts[key])["complete"]
            except NotFound:
                return False
        return self.wait(check)

    def apply(self, key, commitment=None, **extra):
        name = PEOPLE[key][0]
        commitment = PEOPLE[key][6] if commitment is None else commitment
        data = {"session_id": SESSION, "level": "L1", "registration_point": "2916",
                "commitment": ({"pledge_version": "2026-v1", "signed_name": name, "agreed": True}
                               if commitment else None), **extra}
        return self.call("registration", "submit_application", self.accounts[key], data)

    def app(self, key):
        return self.call("registration", "get_application", self.accounts[key], SESSION)

    def app_id(self, key):
        return f"{SESSION}.{self.accounts[key]}"

    def status(self, key, want):
        return self.wait(lambda: self.app(key)["status"] == want and self.app(key))

    def proof(self, key):
        return self.call("registration", "submit_proof", self.accounts[key],
                         {"session_id": SESSION, "files": [{"name": "工作证明.pdf",
                                                            "content_base64": PDF}]})

    def case(self, key):
        return self.call("verification", "get_case", self.app_id(key))

    def case_status(self, key, want):
        return self.wait(lambda: self.case(key)["status"] == want)

    def manual(self, key, decision, reason="materials verified", final=False, staff=STAFF):
        return self.call("verification", "decide_manual", staff, {
            "application_id": self.app_id(key), "decision": decision, "reason": reason,
            "final": final})


def start_season(runner_factory, amqp_uri, databases, *more_services, name="season", **extra):
    """account, registration and verification (and ``more_services``) on a clock at
    2026-04-01 09:00 Asia/Shanghai, with fast timers (and ``extra`` config)."""
    clock = ControlledClock(at(2026, 4, 1, 9, 0))
    config = {"AMQP_URI": amqp_uri, "DATABASE_URL": databases.new(name) + "_{service}",
              "CLOCK": clock, "CATCH_UP_INTERVAL": CATCH_UP, "DEADLINE_INTERVAL": DEADLINE,
              "max_workers": 10, "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024},
              **extra}
    runner = runner_factory(config, AccountService, RegistrationService, VerificationService,
                            *more_services)
    runner.start()
    return Season(runner, clock)


@pytest.fixture
def season(runner_factory, amqp_uri, databases):
    return start_season(runner_factory, amqp_uri, databases)


def test_chart_e_to_t(season):
    s = season
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    for key in PEOPLE:  # A→B: register, complete the profile
        s.candidate(key)
    # C→D: an existing user logs in and maintains their information
    assert s.call("account", "login", {"username": "li_2026", "password": "pass2026word"})
    s.call("account", "update_profile_section", s.accounts["li"], "contact",
           {"email": "li.min@example.com", "address": "上海市闵行区"})
    for key in PEOPLE:
        s.known_complete(key)

    # E: 网上报名 opens at 10:00:00 sharp
    s.clock.set(at(2026, 4, 7, 9, 59, 59))
    with pytest.raises(Refused) as exc:
        s.apply("wang")
    assert exc.value.fields["window"] == "application"
    s.clock.set(at(2026, 4, 7, 10, 0, 0))
    s.wait(lambda: s.integrity_known("zhang"))  # verification published the archive
    assert not s.integrity_known("chen")  # 陈静's record expired in 2024
    with pytest.raises(Refused) as exc:  # 诚信档案: no commitment for 张伟
        s.apply("zhang")
    assert exc.value.fields == {"commitment": "not available: integrity record"}
    s.apply("zhang", commitment=False)
    for key in ("wang", "li", "zhou", "chen", "liu"):
        s.apply(key)
    with pytest.raises(Refused):  # one application per candidate per session
        s.apply("wang")

    # F→G→I→J and I→K→L, F→H→L
    assert s.status("wang", "auto_passed")["history"][-1]["rule"] == "2026.L1.本科.science_engineering"
    s.status("li", "auto_passed")
    zhou = s.status("zhou", "proof_requested")
    assert "大专" in zhou["reason"] and any(h["type"] == "AutoCheckFailed" for h in zhou["history"])
    for key in ("chen", "liu", "zhang"):
        s.status(key, "proof_requested")

    # L→M: proof, in the verification window
    s.clock.set(at(2026, 4, 8, 10, 0))
    for key in ("zhou", "chen", "liu"):
        s.proof(key)
    s.wait(lambda: len(s.call("verification", "manual_queue", STAFF, SESSION)) == 3)
    with pytest.raises(Refused):
        s.proof("wang")  # nothing asked of an auto-passed application
    s.clock.set(at(2026, 4, 8, 12, 0))  # lunch: outside service hours
    with pytest.raises(Refused):
        s.manual("zhou", "pass")
    s.clock.set(at(2026, 4, 8, 14, 0))
    with pytest.raises(Unauthorized):  # staff of another point
        s.manual("zhou", "pass", staff={"staff_id": "x", "registration_point": "3001"})
    s.manual("zhou", "pass")  # M→N
    s.manual("chen", "pass")
    s.manual("liu", "reject", reason="工作证明未盖章")  # M→O
    s.status("liu", "manual_rejected")
    s.clock.set(at(2026, 4, 9, 10, 0))
    s.proof("liu")  # a rejected candidate may send proof again
    s.case_status("liu", "awaiting_manual")
    s.manual("liu", "reject", reason="学历证书与学信网记录不符", final=True)  # O→P
    assert s.status("liu", "terminated")["reason"].startswith("人工核查未通过，报名终止")
    s.status("zhou", "manual_passed")
    s.status("chen", "manual_passed")

    # Q: the spot check, only in its window
    s.clock.set(at(2026, 4, 14, 17, 0))
    with pytest.raises(Refused) as exc:
        s.call("verification", "draw_spot_check", AUTHORITY,
               {"session_id": SESSION, "rate": 0.5, "seed": 2026})
    assert exc.value.fields["window"] == "spot_check"
    s.clock.set(at(2026, 4, 15, 9, 0))
    draw = s.call("verification", "draw_spot_check", AUTHORITY,
                  {"session_id": SESSION, "rate": 0.5, "seed": 2026})
    passed = {s.app_id(k): k for k in ("wang", "li", "zhou", "chen")}
    assert draw["population"] == 4 and len(draw["selected"]) == 2
    with pytest.raises(Refused) as again:  # drawn once: a rule refusal (409), not bad input
        s.call("verification", "draw_spot_check", AUTHORITY,
               {"session_id": SESSION, "rate": 0.5, "seed": 7})
    assert again.value.error_code == "already_drawn"
    drawn = [passed[a] for a in draw["selected"]]
    through = [k for k in passed.values() if k not in drawn]
    for key in through:  # not drawn: passes through
        s.status(key, "eligible")
    for key in drawn:
        s.status(key, "spot_check")
    first, second = drawn
    s.call("verification", "decide_spot_check", AUTHORITY,
           {"application_id": s.app_id(first), "decision": "pass"})  # Q→R
    s.call("verification", "decide_spot_check", AUTHORITY,
           {"application_id": s.app_id(second), "decision": "reject",
            "reason": "工作经历与社保记录不符"})  # Q→S→L
    s.status(first, "eligible")
    s.status(second, "proof_requested")
    # what the authority's spot-check screen reads: the draw and the drawn cases' decisions
    seen = s.call("verification", "spot_check", AUTHORITY, SESSION)
    assert (seen["draw"]["rate"], seen["draw"]["seed"], seen["draw"]["population"]) == (
        0.5, 2026, 4)
    assert seen["draw"]["selected"] == draw["selected"] and seen["draw"]["by"]
    assert [(c["application_id"], c["spot_checked"]) for c in seen["cases"]] == [
        (a, True) for a in draw["selected"]]
    assert s.call("verification", "spot_check", AUTHORITY, "no-such-session") == {
        "session_id": "no-such-session", "draw": None, "cases": []}

    s.clock.set(at(2026, 4, 16, 10, 0))  # proof may come after a spot-check rejection ...
    s.proof(second)
    s.case_status(second, "awaiting_manual")
    with pytest.raises(Refused):  # ... but points do not serve during the spot check
        s.manual(second, "pass")

    # T: 核对确认, from 10:00:00 on the 17th
    s.clock.set(at(2026, 4, 17, 9, 59, 59))
    with pytest.raises(Refused):
        s.call("registration", "confirm_application", s.accounts[first], SESSION)
    s.clock.set(at(2026, 4, 17, 10, 30))
    s.manual(second, "pass", reason="补充社保缴费记录，核实无误")  # L→M→N, straight to confirmed
    s.status(second, "eligible")
    for key in (first, second, through[0]):
        s.call("registration", "confirm_application", s.accounts[key], SESSION)
        assert s.app(key)["status"] == "confirmed"

    # confirmation closes at 16:00:00 on the 18th: the rest end, once
    s.clock.set(at(2026, 4, 18, 16, 0, 0))
    time.sleep(0.5)
    assert s.app(through[1])["status"] == "eligible"  # the last second still counts
    s.clock.set(at(2026, 4, 18, 16, 0, 1))
    assert "逾期" in s.status(through[1], "lapsed")["reason"]
    assert "资格核查仍未完成" in s.status("zhang", "lapsed")["reason"]
    assert s.app("liu")["status"] == "terminated"
    with pytest.raises(Refused):
        s.call("registration", "confirm_application", s.accounts[through[1]], SESSION)

    counts = s.call("registration", "application_counts", SESSION)
    assert counts == {"confirmed": 3, "lapsed": 2, "terminated": 1}
    reg = s.store("registration")
    lapses = [e for e in reg.events_after(0, 10_000) if e.type == "ApplicationLapsed"]
    assert len(lapses) == 2  # the deadline fired once, however often the timer ticked

    # the whole history is there for the candidate, in order
    types = [h["type"] for h in s.app(second)["history"]]
    path = ["ApplicationSubmitted", "SpotCheckSelected", "SpotCheckRejected", "ProofRequested",
            "ProofSubmitted", "ManualCheckPassed", "EligibilityConfirmed", "ApplicationConfirmed"]
    rest = iter(types)
    assert all(step in rest for step in path), types  # in this order, with nothing lost
    assert types[-1] == "ApplicationConfirmed" and types.count("EligibilityConfirmed") == 1

    # rebuilding either read model gives the live one
    for name, proj in (("registration", RegistrationProjection), ("verification", VerificationProjection)):
        store = s.store(name)
        projection = next(p for p in store.projections if isinstance(p, proj))
        live = snapshot(store.engine, projection)
        projection.rebuild(store)
        assert snapshot(store.engine, projection) == live


def test_timetable_amendment_reaches_both_services(season):
    s = season
    s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    with pytest.raises(Refused):  # scheduled once; changes go through amendments
        s.call("registration", "load_session", {"yaml": REFERENCE_SESSION_PATH.read_text("utf-8")})
    new_end = at(2026, 4, 18, 18, 0)
    got = s.call("registration", "amend_timetable", {
        "session_id": SESSION, "window": "confirmation",
        "start": at(2026, 4, 17, 10, 0).isoformat(), "end": new_end.isoformat(),
        "reason": "系统维护，核对确认延长两小时"})
    assert got["windows"]["confirmation"]["end"] == new_end.isoformat()
    with pytest.raises(ValidationFailed) as exc:  # a window that breaks the order is refused
        s.call("registration", "amend_timetable", {
            "session_id": SESSION, "window": "confirmation",
            "start": at(2026, 6, 20, 10, 0).isoformat(), "end": at(2026, 6, 21, 10, 0).isoformat(),
            "reason": "wrong"})
    assert exc.value.fields

    from services.verification.service import fold_session, session_stream

    verification = s.store("verification")
    s.wait(lambda: fold_session(verification.read_stream(session_stream(SESSION))) is not None and
           fold_session(verification.read_stream(session_stream(SESSION)))
           .window("confirmation").end == new_end)

    # once 核对确认 has closed it stays closed: the service's clock decides
    s.clock.set(at(2026, 4, 18, 18, 0, 1))
    with pytest.raises(Refused) as exc:
        s.call("registration", "amend_timetable", {
            "session_id": SESSION, "window": "confirmation",
            "start": at(2026, 4, 17, 10, 0).isoformat(), "end": at(2026, 4, 20, 18, 0).isoformat(),
            "reason": "补办核对确认"})
    assert exc.value.error_code == "window_closed" and "不能再调整" in exc.value.message
