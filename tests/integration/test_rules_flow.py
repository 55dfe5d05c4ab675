"""报考条件 per exam year over HTTP (issue 16 "Rules per exam year", issue 17 item 6), with
account, registration, verification and the gateway running on RabbitMQ and PostgreSQL:

- a session of 2027, a year without rules, is refused at load with the reason, and nothing
  is scheduled; the authority loads 2027's rules (a bad document first: every problem at
  once, nothing stored), sees them, and then the session loads;
- an application in a year without rules (a session scheduled before sessions were checked
  for rules) is not left in ``submitted``: its case opens and goes to proof and the manual
  check with the reason "2028年度没有…的报考条件".
"""

import pytest
import yaml

from services.account.service import AccountService
from services.registration import domain as reg_domain
from services.registration.service import RegistrationService
from services.verification.rules import RULES_DIR
from services.verification.service import VerificationService
from shared.clock import ControlledClock
from shared.events import NewEvent
from shared.session import reference_session
from tests.integration.test_application_flow import at
from tests.integration.test_gateway_flow import CANDIDATES, make_config, start_stack

pytestmark = pytest.mark.integration

RULES_2026 = (RULES_DIR / "2026.yml").read_text("utf-8")
RULES_2027 = RULES_2026.replace("exam_year: 2026", "exam_year: 2027").replace(
    "本科:     {science_engineering: 3, other: 4}", "本科:     {science_engineering: 4, other: 5}")


def session_of(year):
    doc = reference_session().to_dict()
    doc["exam_year"], doc["session_id"] = year, f"{year}-shanghai-jiliang"
    return doc


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases):
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = make_config(amqp_uri, databases, clock, "rules")
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService, VerificationService])


def test_a_session_of_a_year_without_rules_is_refused_until_its_rules_are_loaded(stack):
    api = stack.api
    authority = stack.staff("authority")
    listed = api.get("/api/authority/rules", authority).json()
    assert [(r["exam_year"], r["version"], r["source"]) for r in listed] == [(2026, 0, "shipped")]
    r = api.get("/api/authority/rules/2027", authority)
    assert r.status_code == 404 and "2027年度没有报考条件" in r.json()["error"]["message"]

    # the session of 2027 is refused at load, with what to do
    text = yaml.safe_dump(session_of(2027), allow_unicode=True)
    r = api.post("/api/authority/sessions", authority, {"yaml": text})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "refused" and "exam_year" in error["fields"]
    assert "2027年度没有报考条件" in error["message"] and "kaowu rules load 2027" in error["message"]
    assert api.get("/api/sessions").json() == []

    # a bad rules document: every problem at once, nothing stored
    bad = RULES_2027.replace("本科:     {science_engineering: 4, other: 5}",
                             "本科:     {science_engineering: 4, other: -5}"
                             ).replace("exam_year: 2027", "exam_year: 2026")
    r = api.put("/api/authority/rules/2027", authority, {"yaml": bad})
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]["fields"]) == {"exam_year", "levels.L1.years.本科.other"}
    assert api.get("/api/authority/rules/2027", authority).status_code == 404

    # the authority loads 2027's rules (YAML as the body, the reason in the query)
    r = api.put("/api/authority/rules/2027?reason=2027年度考试公告", authority,
                data=RULES_2027.encode(), headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["exam_year"], got["version"], got["in_force"], got["changed"]) == (2027, 1, 1, True)
    assert got["yaml"] == RULES_2027 and got["levels"] == ["L1", "L2"]
    assert got["document"]["levels"]["L1"]["years"]["本科"] == {"science_engineering": 4,
                                                                 "other": 5}
    [version] = got["versions"]
    assert version["loaded_by"] == stack.accounts["authority"]
    assert version["reason"] == "2027年度考试公告"
    # the same document again adds no version
    again = api.put("/api/authority/rules/2027", authority, {"yaml": RULES_2027})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["version"] == 1

    # and now the session loads
    r = api.post("/api/authority/sessions", authority, {"yaml": text})
    assert r.status_code == 201, r.text
    assert r.json()["exam_year"] == 2027
    listed = api.get("/api/authority/rules", authority).json()
    assert [(r["exam_year"], r["version"]) for r in listed] == [(2027, 1), (2026, 0)]
    # the load is in the audit trail: who, when, why
    audit = api.get("/api/authority/audit", authority).json()["verification"]
    assert [(a["action"], a["why"]) for a in audit] == [("rules_loaded", "2027年度考试公告")]


def test_an_application_in_a_year_without_rules_opens_its_case_for_manual_check(stack):
    api = stack.api
    # a session of 2028 scheduled before sessions were checked for rules: as in the log
    doc = session_of(2028)
    stack.store("registration").append([NewEvent(
        reg_domain.session_stream(doc["session_id"]), "ExamSessionScheduled",
        {"session_id": doc["session_id"], "document": doc})])
    session_id = doc["session_id"]
    stack.wait(lambda: stack.rpc("verification", "case_counts", session_id) == {}
               and session_id in [s["session_id"] for s in api.get("/api/sessions").json()])
    token = stack.candidate("candidate")
    r = api.post("/api/me/applications", token, {
        "session_id": session_id, "level": "L1", "registration_point": "2916",
        "commitment": {"pledge_version": "2026-v1", "signed_name": CANDIDATES["candidate"][0],
                       "agreed": True}})
    assert r.status_code == 201, r.text
    app = stack.wait(lambda: (a := api.get(f"/api/me/applications/{session_id}", token).json())
                     ["status"] != "submitted" and a)
    assert app["status"] == "proof_requested"
    assert "2028年度没有" in app["reason"]
    case = stack.rpc("verification", "get_case", f"{session_id}.{stack.accounts['candidate']}")
    assert case["status"] == "awaiting_proof" and case["rules"] is None
    assert case["auto_check"]["rule"] == "2028.no-eligibility-rules"
