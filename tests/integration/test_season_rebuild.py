"""Rebuild of both services equals the live read model after a random season (hypothesis).

The randomized sibling of ``test_application_flow``: registration and verification run
in-process, without RabbitMQ or nameko containers. Each example gets two fresh SQLite
logs, a ``ControlledClock`` and the two ``TrackingConsumer``s wired as the services wire
them; the services' own entrypoint methods run through nameko's ``worker_factory`` with
real dependencies (the store bound to a context, the clock, the simulated reference data,
and an RPC stub that calls the other service's worker). After every command both
consumers catch up until neither applies anything (what the catch-up timer does), and
after every clock move the deadline timers' bodies run.

Candidates come from account events, appended straight into registration's log (complete
profiles or not, education the registry confirms or not, more or less metrology work). The
clock stops at points through the reference session's windows in order, from before
网上报名 opens to after 核对确认 closes (edges to the second, service hours, the spot-check
pass-through, the confirmation deadline). At each stop come a few stray commands, mostly
refused (refusals are expected and ignored), then what people would do given what they
see: candidates apply, withdraw, send proof, question a rejection (疑问核实) and confirm,
staff of point 2916 work through their manual and enquiry queues (answers may reopen a
case), the authority draws and decides the spot check and now and then voids a
registration (报名无效, with or without an integrity record); hypothesis draws each choice.

At the end of each example: both read models equal their rebuild (in random batch sizes),
agree with the folds of their own streams and with each other, and nothing that must
happen once happened twice. ``--hypothesis-show-statistics`` lists which events and
refusals the examples reached.
"""

import base64
import os
import tempfile
from collections import Counter
from datetime import datetime
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nameko.testing.services import worker_factory
from sqlalchemy import select

from services.registration import domain as reg_domain
from services.registration.projection import RegistrationProjection, applications
from services.registration.projection import integrity_records as reg_integrity_records
from services.registration.schemas import REGISTRY as REGISTRATION_REGISTRY
from services.registration.service import RegistrationService, on_verification_event
from services.verification import domain as ver_domain
from services.verification import reference
from services.verification.archive_feed import ARCHIVE_STREAM, ArchiveFeed, listed
from services.verification.projection import (
    VerificationProjection,
    cases,
    eligibility_rules,
    enquiries,
    integrity_records,
)
from services.verification.rules import RULES_DIR, shipped_rules
from services.verification.schemas import REGISTRY as VERIFICATION_REGISTRY
from services.verification.service import (
    VerificationService,
    make_prepare,
    on_registration_event,
)
from shared.clock import SHANGHAI, ControlledClock
from shared.deadlines import DeadlineRunner
from shared.dependencies import BoundStore
from shared.errors import KaowuError, Refused
from shared.events import NewEvent
from shared.eventstore.store import open_store
from shared.eventstore.unit_of_work import Context
from shared.projection import snapshot
from shared.session import REFERENCE_SESSION_PATH
from shared.tracking import TrackingConsumer, events_answer

pytestmark = pytest.mark.integration

SESSION = "2026-shanghai-jiliang"
SESSION_YAML = REFERENCE_SESSION_PATH.read_text("utf-8")
SHIPPED_RULES = (RULES_DIR / "2026.yml").read_text("utf-8")
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
STAFF = {"staff_id": "staff-01", "registration_point": "2916"}
OTHER_STAFF = {"staff_id": "staff-99", "registration_point": "3001"}
AUTHORITY = {"staff_id": "authority-01"}


def at(month, day, hour=0, minute=0, second=0):
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


# The clock's stops, in order, and which commands mostly make sense at each.
APPLYING, SPOT, CONFIRMING = "applying", "spot", "confirming"
STOPS = [
    (at(4, 7, 9, 59, 59), APPLYING),   # 网上报名 has not opened
    (at(4, 7, 10, 0, 0), APPLYING),    # application and verification open; points serve
    (at(4, 8, 12, 0), APPLYING),       # lunch: outside service hours
    (at(4, 8, 14, 0), APPLYING),
    (at(4, 13, 16, 0, 0), APPLYING),   # the application window's last second; points closed
    (at(4, 13, 16, 0, 1), APPLYING),   # application closed, verification still open
    (at(4, 14, 15, 59, 59), APPLYING),  # verification's last second of service hours
    (at(4, 14, 16, 0, 1), APPLYING),   # verification closed
    (at(4, 15, 9, 0), SPOT),           # 抽查复核: points do not serve
    (at(4, 16, 23, 59, 59), SPOT),     # the spot check's last second
    (at(4, 17, 0, 0, 0), SPOT),        # spot check closed: passed cases not drawn pass through
    (at(4, 17, 9, 59, 59), CONFIRMING),  # 核对确认 has not opened
    (at(4, 17, 10, 30), CONFIRMING),
    (at(4, 18, 15, 59, 59), CONFIRMING),  # confirmation's last second of service hours
    (at(4, 18, 16, 0, 0), CONFIRMING),    # confirmation's last second
    (at(4, 18, 16, 0, 1), CONFIRMING),    # confirmation closed: the rest lapse or end
    (at(4, 20, 9, 0), CONFIRMING),        # later: the deadlines run again, to no effect
]

# Identities: the people of deploy/reference/education-registry.csv (张伟 has a live
# integrity record), then two the registry does not know.
IDENTITIES = [
    # name, id number, education level, certificate no, major category
    ("王建国", "310104198805123455", "本科", "102471201005001234", "science_engineering"),
    ("李敏", "31011519920315002X", "硕士", "103561201702000045", "science_engineering"),
    ("张伟", "310110198511200037", "大专", "102521200606000512", "science_engineering"),
    ("陈静", "320102199007080044", "本科", "102511201205003317", "other"),
    ("刘洋", "31010119761230001X", "博士", "102481200501000027", "science_engineering"),
    ("周婷", "310104199502210062", "大专", "140671201606001105", "science_engineering"),
    ("赵磊", "310104199001010016", "本科", "100001201206009999", "science_engineering"),
    ("孙丽", "310104198702020028", "硕士", "100001201106008888", "other"),
]
OTHER_LEVEL = {"大专": "本科", "本科": "硕士", "硕士": "博士", "博士": "本科"}
# years of metrology work by the cut-off (2026-12-31): 21, 11, 3.6, 1.6, none
WORK_STARTS = ["2005-04-01", "2016-01-01", "2023-06-01", "2025-06-01", "2027-01-01"]

candidate = st.fixed_dictionaries({
    # the registry's record, another level than it has, or no certificate number to check
    "certificate": st.sampled_from(["registry", "registry", "other_level", "none"]),
    "work_start": st.sampled_from(WORK_STARTS),
    "metrology": st.sampled_from([True, True, True, False]),
    "complete": st.sampled_from([True, True, True, True, False]),
})
candidates = st.lists(st.sampled_from(range(len(IDENTITIES))), min_size=2, max_size=4,
                      unique=True).flatmap(
    lambda ids: st.tuples(*[st.tuples(st.just(i), candidate) for i in ids]))

# Stray commands, any of them at any stop: mostly refused (a closed window, a wrong state,
# staff of another point), now and then one that lands.
who = st.integers(0, 4)  # a candidate, modulo how many there are
levels = st.sampled_from(["L1", "L1", "L2"])
commitments = st.sampled_from([True, True, False])  # 告知承诺
exemptions = st.sampled_from([False, False, False, True])
decisions = st.sampled_from(["pass", "pass", "reject", "reject_final"])
stray = st.one_of(
    st.tuples(st.just("apply"), who, levels, commitments, exemptions),
    st.tuples(st.just("withdraw"), who),
    st.tuples(st.just("proof"), who),
    st.tuples(st.just("manual"), who, decisions, st.booleans()),  # staff of the case's point?
    st.tuples(st.just("draw"), st.floats(0.1, 1.0), st.integers(0, 2**31 - 1)),
    st.tuples(st.just("spot"), who, st.booleans()),
    st.tuples(st.just("confirm"), who),
    st.tuples(st.just("enquire"), who),
    st.tuples(st.just("answer"), who, st.booleans(), st.booleans()),  # reopen? own point?
    # 报考条件: the authority loads a version of 2026's rules (本科 years; L2 dropped: refused)
    st.tuples(st.just("rules"), st.integers(1, 4), st.booleans()),
)  # (voiding, which ends everything, comes rarely: see Season.act)
# stray commands at each stop; mostly the whole season, sometimes cut short
season = st.tuples(*[st.lists(stray, max_size=2) for _ in STOPS]).flatmap(
    lambda plan: st.tuples(st.just(plan), st.one_of(
        st.just(len(STOPS)), st.just(len(STOPS)), st.just(len(STOPS)),
        st.integers(1, len(STOPS)))))
often = st.sampled_from([True, True, False])
sometimes = st.sampled_from([True, False, False, False])
rarely = st.sampled_from([True] + [False] * 79)
# what a candidate does when proof is asked for (or may be sent again)
PROOF_WANTED = {"proof_requested", "manual_rejected", "commitment_withdrawn"}
# where a candidate may question the outcome (疑问核实)
REJECTED = {"manual_rejected", "terminated", "proof_requested"}

# application status -> the case statuses it may stand beside once both consumers caught up
COMPATIBLE = {
    "auto_passed": {"passed"},
    "proof_requested": {"awaiting_proof"},
    "proof_submitted": {"awaiting_manual"},
    "manual_passed": {"passed"},
    "manual_rejected": {"manual_rejected"},
    "spot_check": {"spot_check"},
    "eligible": {"confirmed"},
    "confirmed": {"confirmed"},
    # lapsed at the close: eligible (case confirmed) or unresolved (anything but terminated)
    "lapsed": set(ver_domain.STATUSES) - {"terminated"},
    # a final rejection, or rejected and no new proof before the close
    "terminated": {"terminated", "manual_rejected"},
    "voided": {"voided"},
    # submitted, auto_failed, commitment_withdrawn, spot_passed, spot_rejected: transient,
    # verification always answers them at once
}


class Season:
    """Two services' logs, their consumers, and their workers, in one process."""

    def __init__(self, root, reference_data):
        self.clock = ControlledClock(STOPS[0][0])
        self.reference = reference_data
        self.reg = open_store(f"sqlite:///{root}/registration.db", REGISTRATION_REGISTRY,
                              clock=self.clock, projections=[RegistrationProjection()])
        self.ver = open_store(f"sqlite:///{root}/verification.db", VERIFICATION_REGISTRY,
                              clock=self.clock, projections=[VerificationProjection()])
        # the folds each service's container would hold: its workers and consumer share them
        self.reg_docs = RegistrationService.session_docs.fresh()
        self.ver_folds = {"session_docs": VerificationService.session_docs.fresh(),
                          "rule_books": VerificationService.rule_books.fresh()}
        self.ver_consumer = TrackingConsumer(self.ver, "registration", on_registration_event,
                                             prepare=make_prepare({"CLOCK": self.clock},
                                                                  SimpleNamespace(**self.ver_folds)))
        self.reg_consumer = TrackingConsumer(self.reg, "verification", on_verification_event)
        self.deadlines = {"registration": DeadlineRunner("registration"),
                          "verification": DeadlineRunner("verification")}
        self.calls = 0
        self.accounts: list[str] = []
        self.names: list[str] = []
        self.refusals: set[str] = set()
        self.unsettled = False  # something was appended since both consumers last caught up
        for store in (self.reg, self.ver):
            store.on_commit(self._appended)
        feed = ArchiveFeed()  # what verification's publish_archive timer does at start
        feed.setup()
        feed.publish(self.ver, reference_data)

    def _appended(self, _position):
        self.unsettled = True

    def close(self):
        self.reg.engine.dispose()
        self.ver.engine.dispose()

    # -- the consumers: what the events_after RPC returns, pulled until both are level --------

    def fetch_registration(self, position, limit, types=None):
        if types is not None:  # a consumer's pull: its declared types (the RPC's answer)
            return events_answer(self.reg, "registration", position, limit, types)
        return [self.reg.public_view(e, "registration") for e in self.reg.events_after(position, limit)]

    def fetch_verification(self, position, limit, types=None):
        if types is not None:
            return events_answer(self.ver, "verification", position, limit, types)
        return [self.ver.public_view(e, "verification") for e in self.ver.events_after(position, limit)]

    def pump(self):
        """What the catch-up timers do, until neither consumer applies anything (skipped when
        nothing was appended since: it would pull nothing)."""
        if not self.unsettled:
            return
        while (self.ver_consumer.catch_up(self.fetch_registration)
               + self.reg_consumer.catch_up(self.fetch_verification)):
            pass
        self.unsettled = False

    # -- workers: the real entrypoint methods with real dependencies --------------------------

    def _context(self, actor):
        self.calls += 1
        return Context(correlation_id=f"call-{self.calls:04d}", actor=actor)

    def registration(self):
        return worker_factory(RegistrationService,
                              store=BoundStore(self.reg, self._context("test:registration")),
                              clock=self.clock, verification_rpc=_VerificationRpc(self),
                              deadline_effects=self.deadlines["registration"],
                              session_docs=self.reg_docs)

    def verification(self):
        return worker_factory(VerificationService,
                              store=BoundStore(self.ver, self._context("test:verification")),
                              clock=self.clock, reference=self.reference,
                              deadline_effects=self.deadlines["verification"], **self.ver_folds)

    def call(self, service, method, *args):
        worker = self.registration() if service == "registration" else self.verification()
        try:
            return getattr(worker, method)(*args)
        except KaowuError as exc:  # a refusal: nothing was written
            self.refusals.add(f"refused {method}: {exc.error_code} {sorted(exc.fields)}")
            return None
        finally:
            self.pump()

    def move_clock(self, when):
        self.clock.set(when)
        for worker in (self.verification(), self.registration()):
            worker.deadlines()
            self.pump()

    # -- candidates: registration's view of account events ------------------------------------

    def add_candidate(self, n, identity, spec):
        name, id_number, level, certificate, category = IDENTITIES[identity]
        account_id = f"acct{n}"
        entry = {"level": level, "school": "某大学", "major": "测控技术与仪器",
                 "major_category": category, "graduated_on": "2005-03-31",
                 "certificate_no": certificate}
        if spec["certificate"] == "other_level":
            entry["level"] = OTHER_LEVEL[level]
        elif spec["certificate"] == "none":
            del entry["certificate_no"]
        sections = [
            ("education", {"education": [entry], "degrees": []}),
            ("work", {"entries": [{"employer": "上海市计量测试技术研究院", "position": "工程师",
                                   "start": spec["work_start"], "end": None,
                                   "metrology": spec["metrology"]}]}),
        ]
        stream = reg_domain.candidate_stream(account_id)
        events = [NewEvent(stream, "CandidateRegistered", {
            "account_id": account_id, "name": name, "id_type": "resident_id",
            "id_number": id_number})]
        for (section, data), completeness in zip(sections, (60, 100 if spec["complete"] else 80),
                                                 strict=True):
            events.append(NewEvent(stream, "CandidateProfileUpdated", {
                "account_id": account_id, "section": section, "data": data,
                "completeness": completeness}))
        self.reg.append(events, {stream: 0},
                        context=Context(correlation_id=f"account-{n}", actor="service:account"))
        self.accounts.append(account_id)
        self.names.append(name)
        self.pump()

    # -- the commands ---------------------------------------------------------------------------

    def run(self, op):
        kind, rest = op[0], op[1:]
        if kind in ("apply", "withdraw", "proof", "manual", "spot", "confirm", "enquire", "answer",
                    "void"):
            i = rest[0] % len(self.accounts)
            account_id, app_id = self.accounts[i], f"{SESSION}.{self.accounts[i]}"
        if kind == "apply":
            _, level, commitment, exemption = rest
            self.call("registration", "submit_application", account_id, {
                "session_id": SESSION, "level": level, "registration_point": "2916",
                "exemption": ({"ground": "senior_title" if level == "L1" else "verifier_certificate"}
                              if exemption else None),
                "commitment": ({"pledge_version": "2026-v1", "signed_name": self.names[i],
                                "agreed": True} if commitment else None)})
        elif kind == "withdraw":
            self.call("registration", "withdraw_commitment", account_id, SESSION)
        elif kind == "proof":
            self.call("registration", "submit_proof", account_id, {
                "session_id": SESSION, "files": [{"name": "工作证明.pdf", "content_base64": PDF}]})
        elif kind == "manual":
            _, decision, own_point = rest
            self.call("verification", "decide_manual", STAFF if own_point else OTHER_STAFF, {
                "application_id": app_id, "decision": decision.removesuffix("_final"),
                "reason": "材料核实" if decision == "pass" else "工作证明未盖章",
                "final": decision == "reject_final"})
        elif kind == "draw":
            rate, seed = op[1:]
            self.call("verification", "draw_spot_check", AUTHORITY,
                      {"session_id": SESSION, "rate": rate, "seed": seed})
        elif kind == "spot":
            passed = rest[1]
            self.call("verification", "decide_spot_check", AUTHORITY, {
                "application_id": app_id, "decision": "pass" if passed else "reject",
                "reason": "材料核实" if passed else "工作经历与社保记录不符"})
        elif kind == "confirm":
            self.call("registration", "confirm_application", account_id, SESSION)
        elif kind == "enquire":
            self.call("verification", "raise_enquiry", account_id,
                      {"session_id": SESSION, "text": "请再核实"})
        elif kind == "answer":
            _, reopen, own_point = rest
            case = self.call("verification", "get_case", app_id) or {"enquiries": []}
            open_ = [e for e in case["enquiries"] if e["status"] == "open"]
            self.call("verification", "answer_enquiry", STAFF if own_point else OTHER_STAFF, {
                "enquiry_id": open_[0]["enquiry_id"] if open_ else "enq-none",
                "answer": "已复核" if not reopen else "请补交证明", "reopen": reopen})
        elif kind == "void":
            self.call("registration", "void_registration", AUTHORITY, {
                "application_id": app_id, "reason": "虚假承诺", "integrity": rest[1]})
        elif kind == "rules":
            years, without_l2 = rest
            self.call("verification", "load_rules", AUTHORITY, {
                "exam_year": 2026, "yaml": rules_2026(years, without_l2), "reason": "公告更正"})

    def act(self, kind, draw):
        """What people do at a stop, given the state they see (choices drawn by hypothesis)."""
        statuses = self.statuses()
        for i, account_id in enumerate(self.accounts):
            status = statuses.get(account_id)
            if status is None and kind == APPLYING and draw(often):
                self.run(("apply", i, draw(levels), draw(commitments), draw(exemptions)))
            elif status == "auto_passed" and draw(sometimes):
                self.run(("withdraw", i))
            elif status in PROOF_WANTED and draw(often):
                self.run(("proof", i))
            elif status == "eligible" and kind == CONFIRMING and draw(often):
                self.run(("confirm", i))
            if status in REJECTED and draw(often if status != "proof_requested" else sometimes):
                self.run(("enquire", i))
            if status is not None and draw(rarely):
                self.run(("void", i, draw(st.booleans())))
        if kind != SPOT or draw(sometimes):  # staff of 2916 work through their queues
            # in application order: a queue's order among items of the same second follows
            # random ids (an enquiry's), and hypothesis must see the same choices the same
            # way each time it replays them
            for case in by_application(self.call("verification", "manual_queue", STAFF, SESSION)):
                decision = draw(st.one_of(decisions, st.none()))
                if decision:
                    self.run(("manual", self.accounts.index(case["application_id"].split(".")[-1]),
                              decision, True))
            for enquiry in by_application(self.call("verification", "enquiry_queue", STAFF, SESSION)):
                reopen = draw(st.one_of(st.booleans(), st.none()))
                if reopen is not None:
                    self.run(("answer", self.accounts.index(enquiry["application_id"].split(".")[-1]),
                              reopen, True))
        if kind == SPOT:  # the exam authority draws, then decides the drawn cases
            if draw(often):
                self.run(("draw", draw(st.floats(0.1, 1.0)), draw(st.integers(0, 2**31 - 1))))
            with self.ver.engine.connect() as c:
                drawn = c.execute(select(cases.c.account_id).where(
                    cases.c.status == "spot_check").order_by(cases.c.account_id)).scalars().all()
            for account_id in drawn:
                passed = draw(st.one_of(st.booleans(), st.none()))
                if passed is not None:
                    self.run(("spot", self.accounts.index(account_id), passed))

    def statuses(self):
        with self.reg.engine.connect() as c:
            return dict(c.execute(select(applications.c.account_id, applications.c.status)).all())


def by_application(items) -> list[dict]:
    return sorted(items or (), key=lambda item: item["application_id"])


class _VerificationRpc:
    """registration's ``verification_rpc``: what it calls, answered by a verification worker."""

    def __init__(self, season):
        self.season = season

    def get_rules(self, exam_year, version=None):
        return self.season.verification().get_rules(exam_year, version)


def rules_2026(bachelor_years, without_l2=False):
    """The shipped 2026 rules with 本科 (science/engineering) needing ``bachelor_years``."""
    text = SHIPPED_RULES.replace("本科:     {science_engineering: 3, other: 4}",
                                 f"本科:     {{science_engineering: {bachelor_years}, "
                                 f"other: {bachelor_years + 1}}}")
    return text.split("  L2:")[0] if without_l2 else text


# -- the checks -------------------------------------------------------------------------------

def assert_rebuild_equals_live(store, name, batch):
    projection = next(p for p in store.projections if p.name == name)
    live = snapshot(store.engine, projection)
    projection.rebuild(store, batch=batch)
    assert snapshot(store.engine, projection) == live, f"{name}: rebuild differs from the live model"
    assert store.projection_positions()[name] == store.head()


def assert_consistent(s: Season):
    assert s.reg.tracked_position("verification") == s.ver.head()
    assert s.ver.tracked_position("registration") == s.reg.head()
    with s.reg.engine.connect() as c:
        apps = {r.application_id: r for r in c.execute(select(applications))}
    with s.ver.engine.connect() as c:
        case_rows = {r.application_id: r for r in c.execute(select(cases))}
    assert set(apps) == set(case_rows), "every application has a case, every case an application"
    for app_id, row in apps.items():
        app = reg_domain.fold_application(s.reg.read_stream(reg_domain.application_stream(app_id)))
        case = ver_domain.fold(s.ver.read_stream(ver_domain.case_stream(app_id)))
        assert (row.status, row.version, row.reason, row.proof_cause, row.commitment) == (
            app.status, app.version, app.reason, app.proof_cause, app.commitment is not None), app_id
        c = case_rows[app_id]
        assert (c.status, c.version, c.proof_cause, c.spot_checked, c.commitment) == (
            case.status, case.version, case.proof_cause, case.spot_checked, case.commitment), app_id
        assert case.status in COMPATIBLE.get(app.status, set()), \
            f"{app_id}: application {app.status} beside case {case.status}"

    reg_log = list(s.reg.iter_after(0))
    ver_log = list(s.ver.iter_after(0))
    recorded = Counter(e.payload["application_id"] for e in reg_log
                       if e.type == "VerificationRecorded" and e.payload["outcome"] == "EligibilityConfirmed")
    assert all(n == 1 for n in recorded.values()), recorded
    confirmed = Counter(e.payload["application_id"] for e in ver_log if e.type == "EligibilityConfirmed")
    assert all(n == 1 for n in confirmed.values()), confirmed
    # an end happens once (a termination may be reopened by an enquiry's answer, then end again)
    ends = Counter((e.stream_id, e.type) for e in reg_log
                   if e.type in ("ApplicationConfirmed", "ApplicationLapsed", "RegistrationVoided"))
    assert all(n == 1 for n in ends.values()), ends
    # every enquiry as its case's fold has it; every integrity record once, in the read model
    with s.ver.engine.connect() as c:
        enquiry_rows = {r.enquiry_id: r for r in c.execute(select(enquiries))}
        record_rows = {r.record_id for r in c.execute(select(integrity_records))}
    folded = {e["enquiry_id"]: e for app_id in case_rows
              for e in ver_domain.fold(s.ver.read_stream(ver_domain.case_stream(app_id))).enquiries}
    assert set(enquiry_rows) == set(folded)
    for enquiry_id, row in enquiry_rows.items():
        assert (row.status, row.reopened, row.answer) == (
            folded[enquiry_id]["status"], folded[enquiry_id]["reopened"], folded[enquiry_id]["answer"])
    # 报考条件: the versions loaded, in sequence; each case opened under the version then in
    # force (the shipped file, version 0, before any was loaded)
    with s.ver.engine.connect() as c:
        rule_rows = [(r.exam_year, r.version, r.digest) for r in c.execute(
            select(eligibility_rules).order_by(eligibility_rules.c.version))]
    loaded = [e for e in ver_log if e.type == "EligibilityRulesLoaded"]
    assert rule_rows == [(2026, e.payload["version"], e.payload["digest"]) for e in loaded]
    assert [v for _, v, _ in rule_rows] == list(range(1, len(rule_rows) + 1))
    in_force = {"version": 0, "digest": shipped_rules(2026).digest}
    for e in ver_log:
        if e.type == "EligibilityRulesLoaded":
            in_force = {"version": e.payload["version"], "digest": e.payload["digest"]}
        elif e.type == "CaseOpened":
            assert e.payload["rules"] == {"exam_year": 2026, **in_force}
    written = [e.payload["record_id"] for e in ver_log if e.type == "IntegrityRecordWritten"]
    assert sorted(written) == sorted(record_rows) and len(set(written)) == len(written)
    voided_with_record = {e.payload["application_id"] for e in reg_log
                          if e.type == "RegistrationVoided" and e.payload["integrity"]}
    assert len(written) == len(voided_with_record)
    # registration's read model of the archive: what verification published, no more
    with s.reg.engine.connect() as c:
        known = {r.record_id for r in c.execute(select(reg_integrity_records))}
    assert known == set(written) | set(listed(e for e in ver_log if e.stream_id == ARCHIVE_STREAM))
    for log in (reg_log, ver_log):
        deadlines = Counter((e.payload["session_id"], e.payload["window"]) for e in log
                            if e.type == "DeadlineReached")
        assert all(n == 1 for n in deadlines.values()), deadlines
    # past a deadline, its effect is there: nothing passed waits for a draw, nothing stays open
    now = s.clock.now()
    if now >= STOPS[10][0]:
        assert not [a for a, r in case_rows.items() if r.status == "passed"]
        assert ("2026-shanghai-jiliang", "spot_check") in {
            (e.payload["session_id"], e.payload["window"]) for e in ver_log if e.type == "DeadlineReached"}
    if now >= STOPS[15][0]:
        assert {r.status for r in apps.values()} <= reg_domain.FINAL
        assert not [e for e in enquiry_rows.values() if e.status == "open"]  # closed with it


REFERENCE_DATA = reference.from_config({})
# SQLite's fsyncs dominate on a disk; a RAM-backed directory, where there is one, is faster
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(people=candidates, plan=season, batch=st.sampled_from([1, 3, 50, 5000]), data=st.data())
def test_rebuild_equals_live_after_a_random_season(tmp_path, people, plan, batch, data):
    plan, stops = plan
    with tempfile.TemporaryDirectory(dir=SCRATCH or tmp_path, prefix="kaowu-season-") as root:
        s = Season(root, REFERENCE_DATA)
        try:
            s.call("registration", "load_session", {"yaml": SESSION_YAML})
            for n, (identity, spec) in enumerate(people):
                s.add_candidate(n, identity, spec)
            for (when, kind), ops in list(zip(STOPS, plan, strict=True))[:stops]:
                s.move_clock(when)
                for op in ops:
                    s.run(op)
                s.act(kind, data.draw)
            assert_consistent(s)
            for e in [*s.reg.iter_after(0), *s.ver.iter_after(0)]:  # --hypothesis-show-statistics
                event(e.type if e.type != "VerificationRecorded" else "Recorded" + e.payload["outcome"])
            for refusal in s.refusals:
                event(refusal)
            assert_rebuild_equals_live(s.reg, "registration", batch)
            assert_rebuild_equals_live(s.ver, "verification", batch)
            assert_consistent(s)  # the rebuilt models still agree with the logs
        finally:
            s.close()


def test_withdrawing_a_commitment_once_proof_is_requested(tmp_path):
    """Registration refuses it; and should such an event reach verification anyway (a race
    with a lagging consumer), verification passes over it instead of stopping there."""
    with tempfile.TemporaryDirectory(dir=SCRATCH or tmp_path, prefix="kaowu-season-") as root:
        s = Season(root, REFERENCE_DATA)
        try:
            s.call("registration", "load_session", {"yaml": SESSION_YAML})
            # 李敏, 硕士: the registry confirms it, but no metrology work by the cut-off
            s.add_candidate(0, 1, {"certificate": "registry", "work_start": "2027-01-01",
                                   "metrology": True, "complete": True})
            s.add_candidate(1, 0, {"certificate": "registry", "work_start": "2010-01-01",
                                   "metrology": True, "complete": True})
            s.move_clock(STOPS[1][0])
            s.run(("apply", 0, "L1", True, False))
            assert s.statuses() == {"acct0": "proof_requested"}
            with pytest.raises(Refused):
                s.registration().withdraw_commitment("acct0", SESSION)
            # the race: the withdrawal got into registration's log before the request did
            app_id = f"{SESSION}.acct0"
            s.reg.append([NewEvent(f"application-{app_id}", "CommitmentWithdrawn", {
                "application_id": app_id, "account_id": "acct0", "session_id": SESSION,
                "withdrawn_at": STOPS[1][0].isoformat()})])
            s.run(("apply", 1, "L1", False, False))  # and life goes on after it
            s.pump()
            assert s.ver.tracked_position("registration") == s.reg.head()
            assert s.verification().get_case(f"{SESSION}.acct1")["status"]
        finally:
            s.close()
