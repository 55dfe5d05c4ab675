"""A registration point's case page over HTTP, with account, registration and verification
on real RabbitMQ and PostgreSQL: the manual-check queue with each case's wait, the case
with its proof files listed, each proof file served (right type, inline, nosniff) to the
staff of the application's point and to the authority only, the candidate's profile and
photo for those staff only, and every look in the audit trail (searchable by candidate,
staff member and time)."""

import base64
import hashlib
from urllib.parse import urlencode

import pytest

from services.registration.service import RegistrationService
from shared.clock import ControlledClock
from tests.integration.test_account_flow import jpeg
from tests.integration.test_application_flow import SESSION, at
from tests.integration.test_gateway_flow import (
    PDF,
    STAFF_PEOPLE,
    make_config,
    start_stack,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(runner_factory, container_factory, amqp_uri, databases):
    from services.account.service import AccountService
    from services.verification.service import VerificationService
    clock = ControlledClock(at(2026, 4, 7, 10, 30))
    config = make_config(amqp_uri, databases, clock, "staffcase")
    return start_stack(runner_factory, container_factory, config,
                       [AccountService, RegistrationService, VerificationService])


def test_staff_look_at_the_proof_of_their_own_point_only_and_every_look_is_audited(stack):
    api = stack.api
    authority = stack.staff("authority")
    stack.load_session(authority)
    staff, other = stack.staff("staff"), stack.staff("other_staff")
    candidate = stack.candidate("candidate")
    assert stack.apply(candidate, "candidate", commitment=False).status_code == 201
    stack.wait(lambda: api.get(f"/api/me/applications/{SESSION}", candidate).json()["status"]
               == "proof_requested")
    photo = base64.b64decode(jpeg())
    r = api.post(f"/api/me/applications/{SESSION}/proof", candidate, files=[
        ("files", ("工作证明.pdf", PDF, "application/pdf")),
        ("files", ("学历证书.jpg", photo, "image/jpeg"))])
    assert r.status_code == 200, r.text
    app_id = f"{SESSION}.{stack.accounts['candidate']}"
    pdf_id, jpg_id = hashlib.sha256(PDF).hexdigest(), hashlib.sha256(photo).hexdigest()

    # the queue: oldest first, with how long each has waited (on the services' clock)
    stack.wait(lambda: api.get("/api/staff/manual-queue", staff).json())
    stack.clock.advance(minutes=10)  # tokens live 15
    [waiting] = api.get("/api/staff/manual-queue", staff).json()
    assert waiting["application_id"] == app_id and waiting["waiting_s"] >= 10 * 60
    assert api.get("/api/staff/manual-queue", other).json() == []

    # the case lists its proof files
    case = api.get(f"/api/staff/cases/{app_id}", staff).json()
    assert [(f["file_id"], f["name"], f["content_type"], f["size"], f["round"])
            for f in case["proof_files"]] == [
        (pdf_id, "工作证明.pdf", "application/pdf", len(PDF), 1),
        (jpg_id, "学历证书.jpg", "image/jpeg", len(photo), 1)]
    assert case["proof_files"][0]["uploaded_at"]
    assert case["proof_requests"][0]["cause"] == "no_commitment"

    # each file, inline, as what it is
    r = api.get(f"/api/staff/cases/{app_id}/proof/{pdf_id}", staff)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E5%B7%A5%E4%BD%9C" in r.headers["Content-Disposition"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    r = api.get(f"/api/staff/cases/{app_id}/proof/{jpg_id}", staff)
    assert r.status_code == 200 and r.content == photo
    assert r.headers["Content-Type"] == "image/jpeg"
    r = api.get(f"/api/authority/cases/{app_id}/proof/{pdf_id}", authority)
    assert r.status_code == 200 and r.content == PDF

    # nobody else: staff of another point, the candidate, staff on the authority's route
    for path in (f"/api/staff/cases/{app_id}/proof/{pdf_id}",
                 f"/api/staff/cases/{app_id}/candidate", f"/api/staff/cases/{app_id}/photo"):
        r = api.get(path, other)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
        assert api.get(path, candidate).status_code == 403
    assert api.get(f"/api/authority/cases/{app_id}/proof/{pdf_id}", staff).status_code == 403
    # a file that is not this application's, and a malformed id
    unknown = hashlib.sha256(b"not uploaded").hexdigest()
    assert api.get(f"/api/staff/cases/{app_id}/proof/{unknown}", staff).status_code == 404
    r = api.get(f"/api/staff/cases/{app_id}/proof/not-a-hash", staff)
    assert r.status_code == 400 and "file_id" in r.json()["error"]["fields"]

    # the candidate as the point's staff see them
    file = api.get(f"/api/staff/cases/{app_id}/candidate", staff).json()
    assert file["application"]["application_id"] == app_id
    assert file["profile"]["name"] == "王建国"
    assert file["profile"]["sections"]["contact"]["email"] == "wang_2026@example.com"
    assert [f["file_id"] for f in file["proof_files"]] == [pdf_id, jpg_id]
    r = api.get(f"/api/staff/cases/{app_id}/photo", staff)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert r.content.startswith(b"\xff\xd8")

    # every look (and only the looks let through) is in the audit trail
    def looks(**query):
        got = api.get("/api/authority/audit?" + urlencode(query), authority).json()
        return [(e["staff_id"], e["what"].split(" (")[0]) for e in got["registration"]
                if e["action"] == "document_viewed"]

    staff_id, authority_id = stack.accounts["staff"], stack.accounts["authority"]
    mine = looks(account_id=stack.accounts["candidate"])
    assert sorted(mine) == sorted([
        (staff_id, "viewed proof file 工作证明.pdf"), (staff_id, "viewed proof file 学历证书.jpg"),
        (authority_id, "viewed proof file 工作证明.pdf"),
        (staff_id, "viewed the candidate's profile"), (staff_id, "viewed the candidate's photo")])
    assert all(who == staff_id for who, _ in looks(staff_id=staff_id))
    assert len(looks(staff_id=staff_id)) == 4
    assert looks(application_id=app_id) == mine
    assert looks(account_id="nobody") == []
    assert looks(since="2026-04-07T10:40:00+08:00") == mine  # all after the clock's advance
    assert looks(until="2026-04-07T10:40:00+08:00") == []
    r = api.get("/api/authority/audit?since=yesterday", authority)
    assert r.status_code == 400 and "since" in r.json()["error"]["fields"]

    # deciding while looking: the decision is in verification's trail for the same search
    r = api.post(f"/api/staff/cases/{app_id}/decision", staff,
                 {"decision": "pass", "reason": "工作证明与学历证书核实无误"})
    assert r.status_code == 200 and r.json()["status"] == "passed", r.text
    trail = api.get("/api/authority/audit?" + urlencode(
        {"account_id": stack.accounts["candidate"]}), authority).json()
    assert [(e["staff_id"], e["action"]) for e in trail["verification"]] == [
        (staff_id, "manual_check")]
    # who is who: each row names the staff member or the authority beside the id
    names = {staff_id: STAFF_PEOPLE["staff"]["name"],
             authority_id: STAFF_PEOPLE["authority"]["name"]}
    for e in trail["verification"] + trail["registration"]:
        assert e["staff_name"] == names[e["staff_id"]], e
    assert {e["staff_name"] for e in trail["registration"]} == {"李老师", "王处长"}
