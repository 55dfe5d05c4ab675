"""A whole exam season driven by synthetic candidates (模拟考季), against running services.

``SeasonDriver`` schedules a demo session whose windows are compressed into minutes
(``shared.session.demo_session``), then walks N synthetic candidates through it window by
window, doing what candidates, registration-point staff and the exam authority would do,
and finally reads the funnel back from the services' own counts and compares it with what
it meant to happen. ``kaowu demo`` is a thin command around it; benchmarks and
fault-injection runs can use it directly (candidate count, parallelism, clock and reporter
are parameters).

Everything here is SIMULATED: the people, their ID numbers (valid GB 11643 check digits,
random numbers otherwise), their photos, their proof documents and their exam scores. The
education registry the services check against is the simulated one in
``deploy/reference/education-registry.csv``; candidates meant to pass the automatic check
are the people listed there (a handful), everyone else carries an invented diploma
number, which the registry does not know, so their automatic check fails.

The plan (``make_plan``) is deterministic from the seed: which path each candidate takes
(commitment or not, passes or fails each check, confirms or lapses, prints the ticket or
forfeits, sits the exam or is absent, passes or fails it). Identities (ID numbers, mobiles,
usernames) come from a separate ``identity_base``, random per run by default, so a second
demo against the same services does not collide with the first one's accounts (its
session's ticket numbers come from admission's one sequence: no collision there either).
The registry's people are the same in every demo: one met again signs in, keeps the profile
filled in then, and, if an earlier demo qualified them (a valid certificate of the level),
sits again without qualifying twice (``Candidate.qualified_before``).

Beside the plan (``serve_outside``, ``kaowu demo``'s default): a person may register and
apply on the web site while the demo runs. The driver is then every member of staff the
session has, for everyone: as registration-point staff it approves the manual checks of
applications not in its plan (a background sweep of each point's queue), as the authority
passes their spot checks and checks in every ticket holder at each sitting, and as the
(SIMULATED) marking centre gives them passing scores, so they reach a certificate. Its own
funnel is then read for its own accounts only (``account_ids`` of the count RPCs) and the
others' part reported beside it (``SeasonResult.outside``). Off (``--only-planned``, the
season benchmark): only the plan is served and the counts are the session's.

Concurrency: a pool of worker threads, each with its own RPC client (one
``ClusterRpcProxy`` per thread, never shared).
"""

from __future__ import annotations

import base64
import csv
import io
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cli.rpc import CliError, MethodMissing, ThreadClients
from shared.errors import KaowuError, NotFound, Refused, ValidationFailed

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_CSV = ROOT / "deploy/reference/education-registry.csv"
INTEGRITY_CSV = ROOT / "deploy/reference/integrity-archive.csv"
POINT_STAFF_ID = "demo-staff-2916"
AUTHORITY_ID = "demo-authority"
PASSWORD = "Demo2026pass"
PROOF_PDF = b"%PDF-1.4\n% SIMULATED proof of education and metrology work (kaowu demo)\n%%EOF\n"
LEVEL = "L1"

SERVICES_NEEDED = ("account", "registration", "verification")
SERVICES_LATER = ("admission", "scoring", "certificate")


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Route:
    """The path the driver means one candidate to take through the season."""

    archetype: str
    complete_profile: bool = True
    commitment: bool = True  # 告知承诺 signed
    registry: bool = True  # education listed in the (simulated) registry: auto check passes
    manual: str | None = None  # the point's decision on proof: pass | reject | reject_then_pass
    spot_reject: bool = False  # if drawn for the spot check, the authority rejects it
    confirm: bool = True  # 核对确认
    print_ticket: bool = True  # 打印准考证 (else: forfeited)
    attend: bool = True  # checked in at every sitting (else: absent)
    exam_pass: bool = True  # scores at or above the pass mark in every subject


ARCHETYPES: dict[str, Route] = {
    # commitment, the registry confirms the diploma: auto check passes ... certificate
    "certified": Route("certified"),
    # commitment, invented diploma: auto check fails, proof, manual pass; fails the exam
    "auto_fail_then_fails_exam": Route("auto_fail_then_fails_exam", registry=False, manual="pass",
                                       exam_pass=False),
    # no commitment: proof, rejected once, proof again, passed; absent on exam day
    "no_commitment_absent": Route("no_commitment_absent", commitment=False, registry=False,
                                  manual="reject_then_pass", attend=False),
    # no commitment: proof, rejected for good (报名终止)
    "terminated": Route("terminated", commitment=False, registry=False, manual="reject",
                        confirm=False, print_ticket=False, attend=False, exam_pass=False),
    # eligible but never confirms (逾期视为放弃报名)
    "lapsed": Route("lapsed", confirm=False, print_ticket=False, attend=False, exam_pass=False),
    # confirmed but never prints the ticket (视为放弃考试)
    "forfeited": Route("forfeited", print_ticket=False, attend=False, exam_pass=False),
    # registers, never completes the profile, never applies
    "incomplete": Route("incomplete", complete_profile=False, confirm=False, print_ticket=False,
                        attend=False, exam_pass=False),
    # no commitment, proof, manual pass ... certificate
    "manual_certified": Route("manual_certified", commitment=False, registry=False,
                              manual="pass"),
}
# beyond the first of each, candidates are drawn with these weights (most people pass)
WEIGHTS = {"certified": 30, "manual_certified": 20, "auto_fail_then_fails_exam": 12,
           "no_commitment_absent": 8, "terminated": 6, "lapsed": 8, "forfeited": 8,
           "incomplete": 8}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "建国", "晓东", "海燕", "志刚", "文博"]


@dataclass(frozen=True)
class RegistryPerson:
    """A person of the SIMULATED education registry (deploy/reference)."""

    id_number: str
    name: str
    certificate_no: str
    level: str
    school: str
    major: str
    major_category: str
    graduated_on: str


def registry_people(path: Path = REGISTRY_CSV, integrity: Path = INTEGRITY_CSV,
                    on: date | None = None) -> list[RegistryPerson]:
    """The registry's people who can take the commitment route: one diploma each (the
    highest listed), none with a live integrity record (they may not pledge)."""
    on = on or datetime.now(UTC).date()
    barred = set()
    with open(integrity, encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            live = r["recorded_on"] <= on.isoformat() and (not r["expires_on"]
                                                           or r["expires_on"] >= on.isoformat())
            if live:
                barred.add(r["id_number"].strip().upper())
    best: dict[str, RegistryPerson] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            p = RegistryPerson(r["id_number"].strip().upper(), r["name"].strip(),
                               r["certificate_no"].strip(), r["level"].strip(), r["school"].strip(),
                               r["major"].strip(), r["major_category"].strip(),
                               r["graduated_on"].strip())
            if p.id_number in barred:
                continue
            if p.id_number not in best or p.graduated_on > best[p.id_number].graduated_on:
                best[p.id_number] = p
    return sorted(best.values(), key=lambda p: p.id_number)


@dataclass
class Candidate:
    index: int
    path: Route
    name: str
    id_number: str
    mobile: str
    username: str
    registry: RegistryPerson | None = None
    scores_seed: int = 0
    note: str | None = None  # how the plan had to bend (e.g. registry exhausted)
    # what happened (filled in by the driver)
    account_id: str | None = None
    application_id: str | None = None
    ticket_number: str | None = None
    drawn: bool = False
    # a registry person an earlier demo on these services qualified (a valid certificate of
    # the level): sits again, but a qualification is attained once (rolling validity)
    qualified_before: bool = False
    last_seen: str | None = None  # what the driver last saw while waiting for it

    @property
    def label(self) -> str:
        return f"#{self.index:03d} {self.path.archetype}"


IDENTITIES = 14_600_000  # distinct synthetic ID numbers: 14,600 birth dates × 1,000


def resident_id(n: int) -> str:
    """The ``n``-th (mod ``IDENTITIES``) of distinct, valid mainland resident ID numbers
    (GB 11643): Shanghai Xuhui area code, a birth date 1960–1999, sequence, check digit."""
    from services.account.identity import check_digit

    n %= IDENTITIES
    born = date(1960, 1, 1) + timedelta(days=n // 1000)
    first17 = f"310104{born:%Y%m%d}{n % 1000:03d}"
    return first17 + check_digit(first17)


def _archetypes(n: int, rng: random.Random) -> list[str]:
    """Every archetype once (``certified`` always among them) in a seeded order, then draws
    by weight; with fewer candidates than archetypes, the seed picks which ones appear."""
    names = list(ARCHETYPES)
    others = [a for a in names if a != "certified"]
    rng.shuffle(others)
    first = ["certified", *others]
    if n <= len(first):
        chosen = first[:n]
    else:
        chosen = first + rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()),
                                     k=n - len(first))
    rng.shuffle(chosen)
    return chosen


def make_plan(n: int, seed: int, identity_base: int | None = None,
              people: list[RegistryPerson] | None = None) -> list[Candidate]:
    """N candidates and their paths: the paths (and names, scores, spot-check verdicts)
    depend only on ``seed``; ID numbers, mobiles and usernames on ``identity_base``
    (random if None). Candidates meant to pass the automatic check take the registry's
    people in turn; when those run out, the rest go the no-commitment route instead."""
    if n < 1:
        raise ValueError("a season needs at least one candidate")
    rng = random.Random(seed)
    people = list(registry_people() if people is None else people)
    rng.shuffle(people)
    base = secrets.randbelow(IDENTITIES) if identity_base is None else identity_base
    out = []
    for i, archetype in enumerate(_archetypes(n, rng)):
        path = replace(ARCHETYPES[archetype], spot_reject=rng.random() < 0.5)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        k = (base + i) % IDENTITIES
        c = Candidate(index=i, path=path, name=name, id_number=resident_id(k),
                      mobile=f"15{k:09d}", username=f"demo{k:08d}",
                      scores_seed=rng.randrange(1 << 30))
        if path.commitment and path.registry and path.complete_profile:
            if people:
                person = people.pop()
                c.registry, c.name, c.id_number = person, person.name, person.id_number
                c.username = f"demo_reg_{person.id_number[-6:].lower()}"
            else:
                c.path = replace(path, commitment=False, registry=False, manual="pass")
                c.note = "registry people used up: no-commitment route with a manual pass"
        out.append(c)
    return out


def path_mix(plan: Iterable[Candidate]) -> dict[str, int]:
    return dict(Counter(c.path.archetype for c in plan))


# --------------------------------------------------------------------------- the funnel


FUNNEL_ROWS = ("accounts", "complete profiles", "applications", "applications: confirmed",
               "applications: lapsed", "applications: terminated", "applications: other",
               "tickets issued", "tickets printed", "tickets forfeited",
               "check-ins (candidate × subject)", "absences (candidate × subject)",
               "qualified (passed every subject)", "certificates issued",
               "certificates downloaded")


@dataclass(frozen=True)
class Fate:
    """Where one candidate should end up."""

    applied: bool
    status: str | None  # confirmed | lapsed | terminated | None (no application)
    printed: bool
    sat: bool  # checked in at every sitting
    qualified: bool


def fate(c: Candidate) -> Fate:
    """Being drawn for the spot check changes the road, not the end: a rejected candidate
    who goes on sends proof again and passes the manual check during confirmation."""
    p = c.path
    if not p.complete_profile:
        return Fate(False, None, False, False, False)
    if p.manual == "reject":
        return Fate(True, "terminated", False, False, False)
    status = "confirmed" if p.confirm else "lapsed"
    printed = status == "confirmed" and p.print_ticket
    sat = printed and p.attend
    return Fate(True, status, printed, sat, sat and p.exam_pass and not c.qualified_before)


def intended_funnel(plan: list[Candidate], stages: set[str], subjects: int = 3
                    ) -> dict[str, int | None]:
    """The funnel the plan means, for the stages the running services take part in
    (``admission``, ``scoring``, ``certificate``); rows of the others are None.
    ``subjects``: how many subjects each candidate sits (check-ins count per subject)."""
    fates = [fate(c) for c in plan]
    confirmed = sum(f.status == "confirmed" for f in fates)
    out: dict[str, int | None] = {
        "accounts": len(plan),
        "complete profiles": sum(c.path.complete_profile for c in plan),
        "applications": sum(f.applied for f in fates),
        "applications: confirmed": confirmed,
        "applications: lapsed": sum(f.status == "lapsed" for f in fates),
        "applications: terminated": sum(f.status == "terminated" for f in fates),
        "applications: other": 0,
    }
    admission = "admission" in stages
    scoring = admission and "scoring" in stages
    certificate = scoring and "certificate" in stages
    printed = sum(f.printed for f in fates)
    sat = sum(f.sat for f in fates)
    qualified = sum(f.qualified for f in fates)
    out.update({
        "tickets issued": confirmed if admission else None,
        "tickets printed": printed if admission else None,
        "tickets forfeited": confirmed - printed if admission else None,
        "check-ins (candidate × subject)": sat * subjects if admission else None,
        # forfeited tickets are absent from every sitting too (they did not sit)
        "absences (candidate × subject)": (confirmed - sat) * subjects if admission else None,
        "qualified (passed every subject)": qualified if scoring else None,
        "certificates issued": qualified if certificate else None,
        "certificates downloaded": qualified if certificate else None,
    })
    return out


def compare(intended: dict, actual: dict) -> list[tuple[str, int | None, int | None, bool]]:
    """[(row, intended, actual, agrees)] for every funnel row that applies."""
    rows = []
    for name in FUNNEL_ROWS:
        want, got = intended.get(name), actual.get(name)
        if want is None and got is None:
            continue
        rows.append((name, want, got, want == got))
    return rows


def admission_funnel(counts: dict) -> dict:
    """``admission.admission_counts``: check-ins and absences count candidate-subjects."""
    return {"tickets issued": counts.get("tickets_issued"),
            "tickets printed": counts.get("printed"),
            "tickets forfeited": counts.get("forfeited"),
            "check-ins (candidate × subject)": counts.get("checked_in"),
            "absences (candidate × subject)": counts.get("absent")}


def scoring_funnel(counts: dict) -> dict:
    return {"qualified (passed every subject)": counts.get("qualified")}


def certificate_funnel(counts: dict) -> dict:
    return {"certificates issued": counts.get("issued"),
            "certificates downloaded": counts.get("downloaded")}


# --------------------------------------------------------------------------- clocks


class WallClock:
    """Real time: the services run on their system clocks (``kaowu demo``)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, when: datetime, tick: Callable[[], None] | None = None):
        while True:
            left = (when - self.now()).total_seconds()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))
            if tick:
                tick()

    def pause(self, seconds: float):
        time.sleep(seconds)


class SteppedClock:
    """A ``shared.clock.ControlledClock`` the services share in-process (tests,
    benchmarks): waiting for a window moves the clock there instead of sleeping.
    Asynchronous effects (events between services) still take real time: ``pause``."""

    def __init__(self, controlled):
        self.controlled = controlled

    def now(self) -> datetime:
        return self.controlled.now()

    def sleep_until(self, when: datetime, tick: Callable[[], None] | None = None):
        if self.controlled.now() < when:
            self.controlled.set(when)
        if tick:
            tick()

    def pause(self, seconds: float):
        time.sleep(seconds)


# --------------------------------------------------------------------------- reporting


class Task:
    def advance(self, n: int = 1):
        pass

    def finish(self):
        pass


class Reporter:
    """What the driver tells whoever watches (the CLI draws it with Rich). Default: nothing."""

    def phase(self, name: str, description: str):
        pass

    def waiting(self, description: str, until: datetime, now: datetime):
        pass

    def task(self, description: str, total: int) -> Task:
        return Task()

    def note(self, text: str):
        pass


# --------------------------------------------------------------------------- test data


def photo_jpeg(seed: int = 0) -> str:
    """A valid ID photo (SIMULATED): JPEG, 295×413 px, white background, base64."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (295, 413), (255, 255, 255))
    shade = 40 + seed % 50
    ImageDraw.Draw(img).ellipse((90, 100, 205, 300), fill=(shade + 20, shade, shade - 10))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def profile_sections(c: Candidate, photo: str) -> dict[str, dict]:
    """The five profile sections (or, for an incomplete profile, two of them)."""
    from services.account.identity import resident_id_birth_date, resident_id_gender

    basic = {"gender": resident_id_gender(c.id_number),
             "birth_date": resident_id_birth_date(c.id_number).isoformat(), "ethnicity": "汉族"}
    contact = {"email": f"{c.username}@example.com", "address": "上海市徐汇区（模拟地址）"}
    if not c.path.complete_profile:
        return {"basic": basic, "contact": contact}
    if c.registry:
        r = c.registry
        edu = {"level": r.level, "school": r.school, "major": r.major,
               "major_category": r.major_category, "graduated_on": r.graduated_on,
               "certificate_no": r.certificate_no}
    else:  # invented diploma: the simulated registry does not know it
        edu = {"level": "本科", "school": "模拟大学", "major": "测控技术与仪器",
               "major_category": "science_engineering", "graduated_on": "2010-07-01",
               "certificate_no": f"9{c.id_number[-8:-1]}{c.index:05d}SIM"}
    work = {"entries": [{"employer": "上海市计量测试技术研究院（模拟）", "position": "工程师",
                         "start": "2010-08-01", "end": None, "metrology": True}]}
    return {"photo": {"jpeg_base64": photo}, "basic": basic,
            "education": {"education": [edu], "degrees": []}, "work": work, "contact": contact}


def score_for(c: Candidate, subject: str, full_marks: float, pass_mark: float,
              fail: bool) -> float:
    """A SIMULATED whole-mark score of one subject: at or above the pass mark, or (``fail``)
    below it; deterministic from the candidate's seed."""
    rng = random.Random(f"{c.scores_seed}:{subject}")
    lowest_pass = int(-(-pass_mark // 1))
    if fail:
        return float(rng.randint(int(full_marks * 0.2), lowest_pass - 1))
    return float(rng.randint(lowest_pass, int(full_marks)))


def outside_score(ticket_number: str, subject: str, full_marks: float, pass_mark: float) -> float:
    """A SIMULATED passing whole-mark score for someone not in the plan (they tried the site
    beside the demo and should reach a certificate); deterministic from the ticket."""
    rng = random.Random(f"{ticket_number}:{subject}")
    return float(rng.randint(int(-(-pass_mark // 1)), int(full_marks)))


# --------------------------------------------------------------------------- the driver


@dataclass
class Deviation:
    candidate: str
    step: str
    message: str


@dataclass
class SeasonResult:
    session_id: str
    plan: list[Candidate]
    stages: set[str]
    intended: dict
    actual: dict
    comparison: list
    deviations: list[Deviation]
    draw: dict | None
    seconds: float
    skipped: list[str] = field(default_factory=list)
    calls: int = 0
    slowest: tuple[float, str] = (0.0, "")
    # people trying the site beside the demo: what the driver did for them (action -> how
    # many) and their part of the services' funnel (row -> count); empty when not served
    outside_actions: dict = field(default_factory=dict)
    outside: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(agree for *_, agree in self.comparison)


class SeasonDriver:
    """Drives one demo season.

    ``client_factory(timeout=...)`` makes one RPC client; the driver makes one per worker
    thread (``parallelism`` of them) and one for itself. ``clock`` is a ``WallClock`` (real
    services on real time) or a ``SteppedClock`` (in-process services sharing a
    ``ControlledClock``). ``settle``: real seconds to wait for an asynchronous effect (an
    event crossing services, a deadline timer) before calling it a deviation. The season
    benchmark (``bench/season.py``) runs this same driver on its own services and clock."""

    def __init__(self, client_factory, candidates: int = 6, minutes_per_window: float = 1.0,
                 seed: int = 2026, parallelism: int = 4, clock=None, reporter: Reporter | None = None,
                 spot_rate: float = 0.5, identity_base: int | None = None, settle: float = 20.0,
                 margin: float = 0.5, timeout: float = 30.0,
                 people: list[RegistryPerson] | None = None, poll: float = 0.15,
                 make_session: Callable | None = None, serve_outside: bool = True):
        if minutes_per_window * 60 < 2:
            raise ValueError("minutes_per_window must give windows of at least 2 seconds")
        self.client_factory = client_factory
        self.n, self.minutes, self.seed = candidates, minutes_per_window, seed
        self.parallelism = max(1, parallelism)
        self.clock = clock or WallClock()
        self.reporter = reporter or Reporter()
        self.spot_rate, self.identity_base = spot_rate, identity_base
        self.settle, self.margin = settle, margin
        # the registry's people (None: deploy/reference's); a benchmark brings its own, and
        # polls less often (``poll`` s between rounds of ``wait_for``: each round is RPCs)
        self.people_of_registry, self.poll = people, poll
        self.make_session = make_session  # (now, minutes) -> SessionDocument; demo_session
        self.rpc = ThreadClients(client_factory, timeout=timeout)
        self.deviations: list[Deviation] = []
        self.skipped: list[str] = []
        self.doc = None
        self.plan: list[Candidate] = []
        self.stages: set[str] = set()
        self.draw: dict | None = None
        self.staff = {"staff_id": POINT_STAFF_ID, "registration_point": "2916"}
        self.authority = {"staff_id": AUTHORITY_ID}
        self.spot_rejected: list[Candidate] = []  # drawn, rejected, and going on
        self.pool: ThreadPoolExecutor | None = None
        self.calls = 0  # RPC calls made, and the slowest one (seconds, what)
        self.slowest: tuple[float, str] = (0.0, "")
        # applications not in the plan (made on the site beside the demo): served too
        self.serve_outside = serve_outside
        self.point_staff: dict[str, dict] = {}  # registration point -> its staff
        self.outside_done: dict[str, set] = {"manual": set(), "spot_check": set(),
                                             "check_in": set(), "scores": set()}
        self._outside_lock = threading.Lock()
        self._refused: set[str] = set()
        self._sweeping = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- helpers ---------------------------------------------------------------------------

    def call(self, service, method, *args):
        started = time.monotonic()
        try:
            return self.rpc.call(service, method, *args)
        finally:
            took = time.monotonic() - started
            self.calls += 1
            if took > self.slowest[0]:
                self.slowest = (took, f"{service}.{method}")

    def _map(self, fn: Callable, items: list) -> list:
        if self.pool is None:  # one pool for the whole season: one RPC client per worker
            self.pool = ThreadPoolExecutor(max_workers=self.parallelism,
                                           thread_name_prefix="season")
        return list(self.pool.map(fn, items))

    def _deviate(self, item, step: str, message: str):
        if isinstance(item, tuple) and item and isinstance(item[0], Candidate):
            who = " ".join([item[0].label, *map(str, item[1:])])
        else:
            who = item.label if isinstance(item, Candidate) else str(item)
        self.deviations.append(Deviation(who, step, message))

    def each(self, description: str, items: list, fn: Callable) -> list:
        """``fn(item)`` for every item on the worker pool; a refusal becomes a deviation."""
        task = self.reporter.task(description, len(items))

        def run(item):
            try:
                return fn(item)
            except (KaowuError, CliError) as exc:
                self._deviate(item, description, str(exc))
                return None
            finally:
                task.advance()

        out = self._map(run, items) if items else []
        task.finish()
        return out

    def wait_for(self, description: str, items: list, check: Callable,
                 until: datetime | None = None) -> list:
        """Poll ``check(item)`` (on the pool) until it holds for every item, for at most
        ``settle`` real seconds or until the clock passes ``until``; the items still
        pending then are deviations (returned)."""
        deadline = time.monotonic() + self.settle
        pending = list(items)
        task = self.reporter.task(description, len(pending))

        def safe(item):
            try:
                return bool(check(item))
            except (KaowuError, CliError):
                return False

        while pending:
            results = self._map(safe, pending)
            task.advance(sum(results))
            pending = [item for item, ok in zip(pending, results, strict=True) if not ok]
            if not pending or time.monotonic() > deadline or (until and self.clock.now() > until):
                break
            self.clock.pause(self.poll)
        task.finish()
        for item in pending:
            seen = getattr(item, "last_seen", None)
            self._deviate(item, description, "did not happen in time"
                          + (f" (last seen: {seen})" if seen else ""))
        return pending

    def at(self, when: datetime, what: str):
        """Wait (by the driver's clock) until ``when``."""
        if self.clock.now() >= when:
            return
        self.reporter.waiting(what, when, self.clock.now())
        self.clock.sleep_until(when, lambda: self.reporter.waiting(what, when, self.clock.now()))

    def opens(self, window: str, what: str):
        self.at(self.doc.window(window).start + timedelta(seconds=self.margin), what)

    def app(self, c: Candidate) -> dict:
        return self.call("registration", "get_application", c.account_id, self.doc.session_id)

    def status_is(self, *statuses):
        def check(c: Candidate):
            c.last_seen = f"application {self.app(c)['status']}"
            return c.last_seen.split()[-1] in statuses
        return check

    def case_is(self, status):
        def check(c: Candidate):
            c.last_seen = f"case {self.call('verification', 'get_case', c.application_id)['status']}"
            return c.last_seen.split()[-1] == status
        return check

    # -- beside the plan: applications made on the site while the demo runs ---------------

    def _own_applications(self) -> set[str]:
        return {c.application_id for c in self.plan if c.application_id}

    def _outside(self, kind: str, key) -> bool:
        """Record that the driver did ``kind`` for ``key`` (not in the plan); False if done."""
        with self._outside_lock:
            if key in self.outside_done[kind]:
                return False
            self.outside_done[kind].add(key)
            return True

    def _start_sweeping(self):
        """The registration points' staff look at their queues all season long: a person on
        the site sends proof whenever they like."""
        if not self.serve_outside:
            return
        self._sweeping.clear()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="season-sweeper",
                                         daemon=True)
        self._sweeper.start()

    def _stop_sweeping(self):
        self._sweeping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
            self._sweeper = None

    def _sweep_loop(self):
        every = max(self.poll * 4, 0.5)
        while not self._sweeping.wait(every):
            self.sweep_manual()

    def sweep_manual(self) -> int:
        """人工核查 of every pending application not in the plan, at every point of the
        session: approved (the demo plays every point's staff). Returns how many now."""
        if self.doc is None or not self.serve_outside:
            return 0
        own, done = self._own_applications(), 0
        for point, staff in list(self.point_staff.items()):
            try:
                queue = self.call("verification", "manual_queue", staff, self.doc.session_id)
            except (KaowuError, CliError):
                continue  # the next sweep asks again
            for case in queue:
                app_id = case["application_id"]
                if app_id in own or not self._outside("manual", app_id):
                    continue
                try:
                    self.call("verification", "decide_manual", staff, {
                        "application_id": app_id, "decision": "pass",
                        "reason": "材料核实无误（模拟：演示代报名点审核）", "final": False})
                    done += 1
                except (KaowuError, CliError) as exc:
                    with self._outside_lock:
                        self.outside_done["manual"].discard(app_id)
                        first = app_id not in self._refused
                        self._refused.add(app_id)
                    if first:  # asked again at the next sweep; said once
                        self.reporter.note(f"not in the plan: manual check of {app_id} at point "
                                           f"{point} refused ({exc})")
        if done:
            total = len(self.outside_done["manual"])
            self.reporter.note(f"point staff approved the manual check of {done} application(s) "
                               f"not in the demo's plan ({total} so far)")
        return done

    def _outside_spot_checks(self, selected: set):
        """Drawn applications not in the plan pass their spot check."""
        others = sorted(selected - self._own_applications())
        if not others:
            return
        self.wait_for("drawn cases not in the plan recorded", others,
                      lambda a: self.call("verification", "get_case", a)["status"] == "spot_check")

        def decide(app_id):
            self.call("verification", "decide_spot_check", self.authority, {
                "application_id": app_id, "decision": "pass", "reason": "抽查无误（模拟）"})
            self._outside("spot_check", app_id)

        self.each("the authority decides drawn cases not in the plan", others, decide)
        self.reporter.note(f"the authority passed the spot check of {len(others)} application(s) "
                           "not in the demo's plan")

    def _roster(self) -> list[dict]:
        """The session's ticket holders not in the plan (admission's check-in roster)."""
        own = {c.account_id for c in self.plan if c.account_id}
        got = self.call("admission", "session_tickets", self.authority, self.doc.session_id)
        return [t for t in got["candidates"] if t["account_id"] not in own]

    def _outside_check_ins(self, subjects: list[str]):
        """身份核验 of every ticket holder not in the plan for this sitting: they show the
        identity document they registered with (read from their account)."""
        try:
            roster = self._roster()
        except (KaowuError, CliError) as exc:
            self._deviate("authority", "check-in roster", str(exc))
            return
        items = [(t, s) for t in roster if t["status"] in ("issued", "printed")
                 for s in subjects if s in t["subjects"] and s not in t["checked_in"]]
        if not items:
            return

        def check_in(item):
            t, subject = item
            who = self.call("account", "get_profile", t["account_id"])
            self.call("admission", "check_in", self.authority, {
                "ticket_number": t["ticket_number"], "session_id": self.doc.session_id,
                "id_type": who["id_type"], "id_number": who["id_number"], "subject": subject})
            self._outside("check_in", (t["ticket_number"], subject))

        for (t, subject), ok in zip(items, self._map(self._quiet(check_in), items), strict=True):
            if not ok:
                self.reporter.note(f"not in the plan: check-in of {t['ticket_number']} for "
                                   f"{subject} refused")
        people = {t["ticket_number"] for (t, _) in items}
        self.reporter.note(f"checked in {len(people)} ticket holder(s) not in the demo's plan "
                           f"for {', '.join(subjects)}")

    def _quiet(self, fn: Callable) -> Callable:
        """``fn`` returning True, or False where a service refused (not a plan deviation)."""
        def run(item):
            try:
                fn(item)
                return True
            except (KaowuError, CliError):
                return False
        return run

    def _outside_sat(self) -> list[tuple[str, str]]:
        """(ticket number, subject) of every sitting someone not in the plan was checked in
        for: the SIMULATED marking centre marks them (a pass)."""
        try:
            roster = self._roster()
        except (KaowuError, CliError) as exc:
            self._deviate("marking centre", "roster of the others", str(exc))
            return []
        rows = [(t["ticket_number"], s) for t in roster for s in t["checked_in"]]
        for row in rows:
            self._outside("scores", row)
        if rows:
            self.reporter.note(f"the marking centre (simulated) scores {len(rows)} sitting(s) of "
                               f"{len({n for n, _ in rows})} candidate(s) not in the demo's plan: "
                               "a pass")
        return rows

    def _outside_actions(self) -> dict:
        d = self.outside_done
        return {k: v for k, v in {
            "manual checks approved": len(d["manual"]),
            "spot checks passed": len(d["spot_check"]),
            "check-ins (candidate × subject)": len(d["check_in"]),
            "scores given (candidate × subject)": len(d["scores"]),
        }.items() if v}

    def _outside_funnel(self, own: dict) -> dict:
        """The others' part of the services' funnel: the session's counts less the plan's."""
        try:
            total = self._read_funnel(None)
        except (KaowuError, CliError) as exc:
            self._deviate("services", "the session's whole funnel", str(exc))
            return {}
        return {k: total[k] - own[k] for k in FUNNEL_ROWS
                if k in total and isinstance(total.get(k), int) and isinstance(own.get(k), int)
                and total[k] != own[k]}

    # -- the season ------------------------------------------------------------------------

    def run(self) -> SeasonResult:
        started = time.monotonic()
        try:
            self.check_services()
            self.plan = make_plan(self.n, self.seed, self.identity_base,
                                  self.people_of_registry)
            self.reporter.note("path mix: " + ", ".join(f"{k} {v}" for k, v in
                                                         sorted(path_mix(self.plan).items())))
            for c in self.plan:
                if c.note:
                    self.reporter.note(f"{c.label}: {c.note}")
            self.people()
            self.schedule()
            self._start_sweeping()
            self.application()
            self.spot_check()
            self.confirmation()
            if "admission" in self.stages:
                self.ticket_printing()
                self.exam()
                if "scoring" in self.stages:
                    self.scores()
                    if "certificate" in self.stages:
                        self.certificates()
            self.settle_deadlines()
            level = self.doc.levels[LEVEL]
            intended = intended_funnel(self.plan, self.stages, len(level.subjects))
            actual = self.funnel(intended)
            outside = self._outside_funnel(actual) if self.serve_outside else {}
        finally:
            self._stop_sweeping()
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None
            self.rpc.close()
        return SeasonResult(self.doc.session_id, self.plan, set(self.stages), intended, actual,
                            compare(intended, actual), list(self.deviations), self.draw,
                            time.monotonic() - started, list(self.skipped), self.calls,
                            self.slowest, self._outside_actions(), outside)

    def check_services(self):
        from cli.status import gather

        self.reporter.phase("services", "Which services run")
        answers = gather([*SERVICES_NEEDED, *SERVICES_LATER], self.client_factory)
        down = [s for s in SERVICES_NEEDED if not isinstance(answers.get(s), dict)]
        if down:
            raise CliError(f"the demo needs {', '.join(SERVICES_NEEDED)}; not answering: "
                           f"{', '.join(down)} ({answers[down[0]]})")
        # each later stage needs the ones before it
        for s in SERVICES_LATER:
            if not isinstance(answers.get(s), dict):
                self.skipped.append(f"{s} is not running: the season stops before its part "
                                    f"({answers.get(s)})")
                self.reporter.note(self.skipped[-1])
                break
            self.stages.add(s)
        self.reporter.note("running: " + ", ".join([*SERVICES_NEEDED, *sorted(self.stages)]))

    # 注册账号 → 信息维护 (before the session exists: the application window is for applying)
    def people(self):
        self.reporter.phase("accounts", "注册账号 and 信息维护: staff and candidates")
        self.staff["staff_id"] = self._staff_account(
            "demo_staff_2916", "报名点工作人员", "staff", "2916") or POINT_STAFF_ID
        self.authority["staff_id"] = self._staff_account(
            "demo_authority", "考试机构工作人员", "authority", None) or AUTHORITY_ID
        photo = photo_jpeg(self.seed)

        def register(c: Candidate):
            data = {"name": c.name, "id_type": "resident_id", "id_number": c.id_number,
                    "mobile": c.mobile, "username": c.username, "password": PASSWORD}
            try:
                c.account_id = self.call("account", "register", data)["account_id"]
            except Refused as exc:
                if not c.registry or "id_number" not in (exc.fields or {}):
                    raise
                # a registry person from an earlier demo on these services: log in again
                c.account_id = self.call("account", "login", {"username": c.username,
                                                              "password": PASSWORD})["account_id"]
                if "certificate" in self.stages:
                    c.qualified_before = any(
                        x.get("level") == LEVEL and x.get("status") == "valid"
                        for x in self.call("certificate", "my_certificates", c.account_id))
                if c.qualified_before:
                    self.reporter.note(f"{c.label}: qualified in an earlier demo on these "
                                       "services; sits again, but qualifies once")
                if self.call("account", "get_profile", c.account_id).get("complete"):
                    return  # filled in then (saved entries are edited, never sent anew)
            for section, values in profile_sections(c, photo).items():
                self.call("account", "update_profile_section", c.account_id, section, values)

        self.each("candidates register and fill in their profiles", self.plan, register)
        complete = [c for c in self.plan if c.account_id and c.path.complete_profile]

        def known(c):
            try:
                return self.call("registration", "get_candidate", c.account_id)["complete"]
            except NotFound:
                return False

        self.wait_for("registration sees the complete profiles", complete, known)

    def _staff_account(self, username, name, role, point) -> str | None:
        """A staff account for the demo's staff actions (made once, found again later);
        None where the account service has no staff accounts."""
        try:
            return self.call("account", "create_staff", {
                "username": username, "password": PASSWORD, "name": name, "role": role,
                "registration_point": point})["account_id"]
        except MethodMissing:
            return None
        except ValidationFailed as exc:
            self.reporter.note(f"staff account {username} not made ({exc}); acting as {username}")
            return None
        except Refused:
            found = [s for s in self.call("account", "list_staff") if s["username"] == username]
            return found[0]["account_id"] if found else None

    def schedule(self):
        from cli.sessions import to_yaml
        from shared.session import SessionDocument, demo_session

        self.reporter.phase("schedule", "考试计划: a demo session, windows starting now")
        doc = (self.make_session or demo_session)(self.clock.now(), self.minutes)
        taken = {s["session_id"] for s in self.call("registration", "list_sessions")}
        if doc.session_id in taken:  # another demo in the same minute: add the second
            d = doc.to_dict()
            d["session_id"] = f"{doc.session_id}{doc.window('application').start:%S}"
            doc = SessionDocument.from_dict(d)
        self.call("registration", "load_session", {"yaml": to_yaml(doc)})
        self.doc = doc
        self.staff["registration_point"] = next(iter(doc.points))
        self.point_staff = {self.staff["registration_point"]: self.staff}
        if self.serve_outside:  # someone on the site may choose any point of the session
            for pt in doc.points:
                if pt not in self.point_staff:
                    self.point_staff[pt] = {"staff_id": self._staff_account(
                        f"demo_staff_{pt}", "报名点工作人员", "staff", pt) or f"demo-staff-{pt}",
                        "registration_point": pt}
        self.reporter.note(f"session {doc.session_id}: " + "; ".join(
            f"{n} {w.start.astimezone(doc.tz):%H:%M:%S}–{w.end.astimezone(doc.tz):%H:%M:%S}"
            for n, w in doc.windows.items()))

    # 网上报名 → 资格核查 (automatic, proof, manual)
    def application(self):
        doc = self.doc
        self.opens("application", "waiting for 网上报名 to open")
        self.reporter.phase("application", "网上报名 and 资格核查")
        applicants = [c for c in self.plan if c.account_id and c.path.complete_profile]

        def apply(c: Candidate):
            data = {"session_id": doc.session_id, "level": LEVEL,
                    "registration_point": self.staff["registration_point"],
                    "commitment": ({"pledge_version": doc.pledge_version, "signed_name": c.name,
                                    "agreed": True} if c.path.commitment else None)}
            c.application_id = self.call("registration", "submit_application", c.account_id,
                                         data)["application_id"]

        self.each("candidates apply", applicants, apply)
        applied = [c for c in applicants if c.application_id]
        end = doc.window("verification").end
        # a straggler must not cost the others their proof rounds: wait at most until
        # applications close
        self.wait_for("automatic checks and proof requests", applied,
                      self.status_is("auto_passed", "proof_requested"),
                      until=doc.window("application").end)
        needs_proof = [c for c in applied if c.path.manual]
        self._proof_round(needs_proof, first=True)
        self._proof_round([c for c in needs_proof if c.path.manual == "reject_then_pass"],
                          first=False)
        self.wait_for("verification outcomes recorded", applied,
                      self.status_is("auto_passed", "manual_passed", "terminated"), until=end)
        self.sweep_manual()  # proof sent on the site just now: before verification closes

    def _proof_round(self, group: list[Candidate], first: bool):
        if not group:
            return
        self.wait_for("proof requested" if first else "rejection recorded", group,
                      self.status_is("proof_requested" if first else "manual_rejected"))
        self.each("candidates submit proof", group, self._submit_proof)
        self.wait_for("proof reaches the registration point", group,
                      self.case_is("awaiting_manual"))

        def decide(c: Candidate):
            m = c.path.manual
            if m == "reject":
                self._manual(c, "reject", "学历证书与学信网记录不符（模拟）", final=True)
            elif m == "reject_then_pass" and first:
                self._manual(c, "reject", "工作证明未盖章（模拟）")
            else:
                self._manual(c, "pass", "材料核实无误（模拟）")

        self.each("the registration point decides (人工核查)", group, decide)

    def _submit_proof(self, c: Candidate):
        self.call("registration", "submit_proof", c.account_id, {
            "session_id": self.doc.session_id,
            "files": [{"name": "证明材料（模拟）.pdf",
                       "content_base64": base64.b64encode(PROOF_PDF).decode()}]})

    def _manual(self, c: Candidate, decision: str, reason: str, final: bool = False):
        self.call("verification", "decide_manual", self.staff, {
            "application_id": c.application_id, "decision": decision, "reason": reason,
            "final": final})

    # 抽查复核
    def spot_check(self):
        self.opens("spot_check", "waiting for 抽查复核 to open")
        self.reporter.phase("spot_check", "抽查复核: the draw and the authority's decisions")
        try:
            self.draw = self.call("verification", "draw_spot_check", self.authority, {
                "session_id": self.doc.session_id, "rate": self.spot_rate, "seed": self.seed})
        except (KaowuError, CliError) as exc:
            self._deviate("authority", "spot-check draw", str(exc))
            return
        selected = set(self.draw.get("selected") or [])
        drawn = [c for c in self.plan if c.application_id in selected]
        for c in drawn:
            c.drawn = True
        self.reporter.note(f"drew {len(drawn)} of {self.draw.get('population')} passed cases")
        self.wait_for("drawn cases recorded", drawn, self.status_is("spot_check"))

        def decide(c: Candidate):
            reject = c.path.spot_reject
            self.call("verification", "decide_spot_check", self.authority, {
                "application_id": c.application_id, "decision": "reject" if reject else "pass",
                "reason": "工作经历与社保记录不符（模拟）" if reject else "抽查无误（模拟）"})

        self.each("the authority decides the drawn cases", drawn, decide)
        if self.serve_outside:
            self._outside_spot_checks(selected)
        # rejected and going on: proof again now; the point decides when it serves again
        self.spot_rejected = [c for c in drawn if c.path.spot_reject and c.path.confirm]
        if self.spot_rejected:
            self.wait_for("spot-check rejections recorded", self.spot_rejected,
                          self.status_is("proof_requested"))
            self.each("rejected candidates submit proof again", self.spot_rejected,
                      self._submit_proof)

    # 核对确认
    def confirmation(self):
        self.opens("confirmation", "waiting for 核对确认 to open")
        self.reporter.phase("confirmation", "核对确认")
        end = self.doc.window("confirmation").end
        if self.spot_rejected:
            self.wait_for("proof reaches the registration point", self.spot_rejected,
                          self.case_is("awaiting_manual"), until=end)
            self.each("the registration point decides again", self.spot_rejected,
                      lambda c: self._manual(c, "pass", "补充社保缴费记录，核实无误（模拟）"))
        self.sweep_manual()
        confirming = [c for c in self.plan if c.application_id and c.path.confirm
                      and c.path.manual != "reject"]
        self.wait_for("eligibility confirmed", confirming, self.status_is("eligible"), until=end)
        self.each("candidates confirm", confirming,
                  lambda c: self.call("registration", "confirm_application", c.account_id,
                                      self.doc.session_id))

    # 打印准考证 (seats and tickets are made when confirmation closes)
    def ticket_printing(self):
        self.opens("ticket_printing", "waiting for 打印准考证 to open")
        self.reporter.phase("ticket_printing", "打印准考证")
        confirmed = [c for c in self.plan if c.application_id and fate(c).status == "confirmed"]

        def ticket(c: Candidate):
            t = self.call("admission", "get_ticket", c.account_id, self.doc.session_id)
            c.ticket_number = t.get("ticket_number")
            return bool(c.ticket_number)

        self.wait_for("tickets issued", confirmed, ticket,
                      until=self.doc.window("ticket_printing").end)
        self.each("candidates print their tickets",
                  [c for c in confirmed if c.path.print_ticket and c.ticket_number],
                  lambda c: self.call("admission", "download_ticket", c.account_id,
                                      self.doc.session_id))

    # 考试 (身份核验 at the door of every sitting)
    def exam(self):
        self.opens("exam", "waiting for the exam")
        self.reporter.phase("exam", "考试: identity checked at the door")
        sitting = [c for c in self.plan if c.ticket_number and c.path.print_ticket and c.path.attend]
        level = self.doc.levels[LEVEL]
        starts: dict[datetime, list[str]] = {}
        for e in self.doc.exam_schedule:
            # beside the plan, every level's sittings: someone on the site may sit another
            if e["subject"] in level.subjects or self.serve_outside:
                starts.setdefault(e["start"], []).append(e["subject"])
        for start in sorted(starts):
            subjects = starts[start]
            self.at(start + timedelta(seconds=min(self.margin, 0.2)),
                    f"waiting for the sitting of {', '.join(subjects)}")
            self.each(f"check-in for {', '.join(subjects)}",
                      [(c, s) for c in sitting for s in subjects if s in level.subjects],
                      self._check_in)
            if self.serve_outside:
                self._outside_check_ins(subjects)

    def _check_in(self, item):
        c, subject = item
        self.call("admission", "check_in", self.authority, {
            "ticket_number": c.ticket_number, "session_id": self.doc.session_id,
            "id_type": "resident_id", "id_number": c.id_number, "subject": subject})

    # 成绩: the marking centre's file (SIMULATED), imported after the exam, then published
    def scores(self):
        self.opens("scores", "waiting for the exam to end")
        self.reporter.phase("scores", "成绩: import and publish")
        try:
            got = self.call("scoring", "import_scores", self.authority, {
                "session_id": self.doc.session_id, "filename": "demo-scores.csv",
                "csv": self.score_file()})
            self.reporter.note(f"imported {got.get('rows')} score rows of "
                               f"{got.get('candidates')} candidates")
            got = self.call("scoring", "publish_scores", self.authority, self.doc.session_id)
            self.reporter.note(f"published: {got}")
        except (KaowuError, CliError) as exc:
            self._deviate("authority", "score import and publication", str(exc))

    def score_file(self) -> str:
        """ticket_number,subject,score for everyone who sat: a failing candidate fails the
        last subject and passes the others."""
        level = self.doc.levels[LEVEL]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["ticket_number", "subject", "score"])
        for c in self.plan:
            if not (c.ticket_number and fate(c).sat):
                continue
            for i, code in enumerate(level.subjects):
                s = self.doc.subjects[code]
                fail = not c.path.exam_pass and i == len(level.subjects) - 1
                w.writerow([c.ticket_number, code,
                            f"{score_for(c, code, s.full_marks, s.pass_mark, fail):g}"])
        if self.serve_outside:
            for number, code in self._outside_sat():
                s = self.doc.subjects[code]
                w.writerow([number, code, f"{outside_score(number, code, s.full_marks, s.pass_mark):g}"])
        return out.getvalue()

    # 证书: issued on qualification; downloaded in the certificates window
    def certificates(self):
        qualified = [c for c in self.plan if fate(c).qualified]
        numbers: dict[int, str] = {}

        def issued(c: Candidate):
            got = [x for x in self.call("certificate", "my_certificates", c.account_id)
                   if x.get("session_id") == self.doc.session_id]
            if got:
                numbers[c.index] = got[0]["certificate_number"]
            return bool(got)

        self.wait_for("certificates issued", qualified, issued,
                      until=self.doc.window("certificates").end)
        self.opens("certificates", "waiting for the certificates window")
        self.reporter.phase("certificates", "证书: candidates download their certificates")
        self.each("candidates download certificates", [c for c in qualified if c.index in numbers],
                  lambda c: self.call("certificate", "download_certificate", c.account_id,
                                      numbers[c.index], "pdf"))

    def settle_deadlines(self):
        """The last deadline effects come from the services' own timers: wait for their time."""
        self.reporter.phase("deadlines", "Deadline effects")
        last = self.doc.window("confirmation").end_exclusive
        if "admission" in self.stages:
            last = max(last, self.doc.window("exam").end_exclusive)
        self.at(last + timedelta(seconds=self.margin), "waiting for the last deadline")

    # -- the funnel, read back from the services --------------------------------------------

    def funnel(self, intended: dict) -> dict:
        """The funnel as the services count it. Their last effects (deadline timers, events
        crossing services) may land a moment late, so it is read again until it agrees or
        ``settle`` seconds pass; what is returned is what they said last."""
        self.reporter.phase("funnel", "The funnel, read back from the services")
        # beside the plan, the plan's own accounts only: others' applications count apart
        own = [c.account_id for c in self.plan if c.account_id] if self.serve_outside else None
        deadline = time.monotonic() + self.settle
        actual = self._read_funnel(own)
        while time.monotonic() < deadline and not all(a for *_, a in compare(intended, actual)):
            self.clock.pause(0.5)
            actual = self._read_funnel(own)
        return actual

    def _read_funnel(self, accounts: list[str] | None) -> dict:
        """The services' counts of the session: of ``accounts`` only, or (None) of everyone;
        the accounts and profiles are always the plan's own."""
        session = self.doc.session_id
        of = () if accounts is None else (accounts,)
        apps = self.call("registration", "application_counts", session, *of)
        profiles = [p for p in self._map(self._profile,
                                         [c for c in self.plan if c.account_id]) if p]
        out: dict[str, int | None] = {
            "accounts": len(profiles),
            "complete profiles": sum(bool(p.get("complete")) for p in profiles)}
        out.update({
            "applications": sum(apps.values()),
            "applications: confirmed": apps.get("confirmed", 0),
            "applications: lapsed": apps.get("lapsed", 0),
            "applications: terminated": apps.get("terminated", 0),
            "applications: other": sum(v for k, v in apps.items()
                                       if k not in ("confirmed", "lapsed", "terminated")),
        })
        if "admission" in self.stages:
            out.update(admission_funnel(self._counts("admission", "admission_counts", session,
                                                      *of)))
        if "scoring" in self.stages:
            out.update(scoring_funnel(self._counts("scoring", "score_counts", session, *of)))
        if "certificate" in self.stages:
            out.update(certificate_funnel(self._counts("certificate", "certificate_counts",
                                                       session, *of)))
        return out

    def _profile(self, c: Candidate):
        try:
            return self.call("account", "get_profile", c.account_id)
        except (KaowuError, CliError):
            return None

    def _counts(self, service, method, session, *of) -> dict:
        try:
            return self.call(service, method, session, *of)
        except (KaowuError, CliError) as exc:
            self._deviate(service, method, str(exc))
            return {}
