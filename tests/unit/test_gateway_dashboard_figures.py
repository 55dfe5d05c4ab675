"""The dashboard's figures from the services' answers (pure), and the OpenAPI document."""

from datetime import datetime, timedelta

import jsonschema
import pytest

from services.gateway import dashboard, openapi, web
from services.gateway.service import GatewayService
from services.gateway.uploads import MAX_PROOF_FILES
from shared.clock import SHANGHAI
from shared.contracts.registration import MAX_SUBJECTS
from shared.session import reference_session


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


def session_answer(doc, now):
    """What registration.get_session answers (windows as ISO strings)."""
    return {"session_id": doc.session_id, "name": doc.name, "phase": doc.phase(now),
            "windows": {n: {"start": w.start.isoformat(), "end": w.end.isoformat()}
                        for n, w in doc.windows.items()},
            "registration_points": {c: {"name": p.name} for c, p in doc.points.items()}}


REF = reference_session()


@pytest.mark.parametrize("now, window, kind, shown", [
    (at(2026, 4, 7, 10, 30), "application", "closes", at(2026, 4, 13, 16, 0)),
    (at(2026, 4, 13, 16, 0, 0), "application", "closes", at(2026, 4, 13, 16, 0)),  # last second
    (at(2026, 4, 13, 16, 0, 1), "verification", "closes", at(2026, 4, 14, 16, 0)),
    (at(2026, 4, 14, 17, 0), "spot_check", "opens", at(2026, 4, 15, 0, 0)),
    (at(2026, 4, 1, 9, 0), "application", "opens", at(2026, 4, 7, 10, 0)),
    (at(2026, 5, 1, 9, 0), "ticket_printing", "opens", at(2026, 6, 10, 10, 0)),
])
def test_next_deadline(now, window, kind, shown):
    d = dashboard.next_deadline(session_answer(REF, now), now)
    assert (d["window"], d["kind"], d["at"]) == (window, kind, shown.isoformat())
    gap = (shown + (timedelta(seconds=1) if kind == "closes" else timedelta()) - now)
    assert d["seconds"] == int(gap.total_seconds())


def test_no_deadline_after_the_last_window():
    assert dashboard.next_deadline(session_answer(REF, at(2028, 1, 1)), at(2028, 1, 1)) is None


def test_pick_session():
    now = at(2026, 4, 7, 10, 30)
    old = {**session_answer(REF, now), "session_id": "old",
           "windows": {"exam": {"start": at(2025, 6, 1).isoformat(), "end": at(2025, 6, 2).isoformat()}}}
    later = {**session_answer(REF, now), "session_id": "later",
             "windows": {"application": {"start": at(2027, 4, 1).isoformat(),
                                         "end": at(2027, 4, 8).isoformat()}}}
    current = session_answer(REF, now)
    assert dashboard.pick_session([old, later, current], now)["session_id"] == REF.session_id
    assert dashboard.pick_session([old, later], now)["session_id"] == "later"
    assert dashboard.pick_session([old], now)["session_id"] == "old"
    assert dashboard.pick_session([], now) is None


def test_service_health_and_lags():
    statuses = {
        "account": ("ok", {"head": 40, "relay_position": 38, "relay_lag": 2, "tracking": {}}),
        "registration": ("ok", {"head": 90, "relay_position": 90, "relay_lag": 0,
                                "tracking": {"account": 35, "verification": 12}}),
        "verification": ("down", "The verification service is not running; try again later."),
    }
    health = dashboard.service_health(statuses)
    assert health["account"]["relay_lag"] == 2
    assert health["registration"]["consumers"] == [
        {"upstream": "account", "position": 35, "upstream_head": 40, "lag": 5},
        {"upstream": "verification", "position": 12, "upstream_head": None, "lag": None}]
    assert health["verification"] == {"up": False, "error": statuses["verification"][1]}


def test_shape_marks_what_is_down():
    now = at(2026, 4, 7, 10, 30)
    session = session_answer(REF, now)
    answers = {"accounts": ("ok", {"accounts": 7, "complete_profiles": 5}),
               "applications": ("ok", {"submitted": 1, "proof_submitted": 2, "confirmed": 3}),
               "admission": ("down", "The admission service is not running; try again later."),
               "scoring": ("ok", {"qualified": 1, "published": False}),
               "certificates": ("ok", {"oops": 1})}  # a shape the funnel cannot read
    got = dashboard.shape(now, [session], session, answers, {"2916": ("ok", [{}, {}])}, {})
    funnel = {f["key"]: f["value"] for f in got["funnel"]}
    assert funnel == {"accounts": 7, "complete_profiles": 5, "applications": 6, "confirmed": 3,
                      "tickets_printed": None, "checked_in": None, "qualified": 1,
                      "certificates": None}
    assert got["admission"] == {"available": False, "error": answers["admission"][1]}
    assert got["cases"]["available"] is False  # not asked at all
    assert got["manual_queues"] == [{"code": "2916", "name": "上海市计量协会培训部",
                                     "waiting": 2, "oldest_wait_s": None, "available": True}]
    assert got["session"]["phase"] == "application"
    assert got["session"]["phase_label"] == "网上报名"
    assert dashboard.shape(now, [], None, {}, {}, {})["session"] is None


def test_queues_say_their_oldest_wait_and_the_funnel_its_conversions():
    now = at(2026, 4, 7, 10, 30)
    session = session_answer(REF, now)
    answers = {"accounts": ("ok", {"accounts": 8, "complete_profiles": 6}),
               "applications": ("ok", {"submitted": 3, "confirmed": 0})}
    queue = [{"waiting_s": 3600}, {"waiting_s": 120}]
    got = dashboard.shape(now, [session], session, answers,
                          {"2916": ("ok", queue), "3001": ("down", "no")}, {})
    assert [(q["code"], q["waiting"], q["oldest_wait_s"]) for q in got["manual_queues"]] == [
        ("2916", 2, 3600), ("3001", None, None)]
    steps = {f["key"]: (f["rate"], f["of_first"]) for f in got["funnel"]}
    assert steps["accounts"] == (None, 100.0)
    assert steps["complete_profiles"] == (75.0, 75.0)
    assert steps["applications"] == (50.0, 37.5)
    assert steps["confirmed"] == (0.0, 0.0)
    assert steps["tickets_printed"] == (None, None)  # admission did not answer
    assert steps["checked_in"] == (None, None)  # nothing to compare with


def test_windows_count_down_to_their_close():
    now = at(2026, 4, 13, 15, 59, 0)
    ws = {w["window"]: w for w in dashboard.windows(session_answer(REF, now), now)}
    assert list(ws)[:3] == ["application", "verification", "spot_check"]
    assert ws["application"]["state"] == "open" and ws["application"]["closes_in"] == 61
    assert ws["verification"]["closes_in"] == 24 * 3600 + 61
    assert ws["spot_check"]["state"] == "upcoming" and ws["spot_check"]["closes_in"] is None
    later = at(2026, 4, 14, 17, 0)
    assert dashboard.windows(session_answer(REF, later), later)[0]["state"] == "closed"


# -------------------------------------------------------------------------- OpenAPI


@pytest.fixture(scope="module")
def doc():
    return openapi.document(web.routes_of(GatewayService))


def test_document_is_openapi_31_with_valid_schemas(doc):
    assert doc["openapi"] == "3.1.0"
    validator = jsonschema.Draft202012Validator
    validator.check_schema(doc["components"]["schemas"]["Error"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for content in (op.get("requestBody") or {}).get("content", {}).values():
                validator.check_schema(content["schema"])
            for p in op.get("parameters", []):
                validator.check_schema(p["schema"])
                if p["in"] == "path":
                    assert "{" + p["name"] + "}" in path
            statuses = set(op["responses"])
            if op["security"]:
                assert {"401", "403"} <= statuses, (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415"} <= statuses, (method, path)
            assert "500" in statuses


def test_every_route_has_an_access_rule_and_candidate_routes_take_no_account_id(doc):
    for path, item in doc["paths"].items():
        for op in item.values():
            assert op["x-kaowu-access"]
            if path.startswith("/api/me"):
                assert op["x-kaowu-roles"] == ["candidate"]
                names = [p["name"] for p in op.get("parameters", [])]
                assert "account_id" not in names  # who comes from the token
                body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
                if body and "properties" in body["schema"]:
                    assert "account_id" not in body["schema"]["properties"]
            if path.startswith("/api/staff"):
                assert op["x-kaowu-roles"] == ["staff"]
                assert "registration_point" not in str(op.get("requestBody", ""))
            if path.startswith("/api/authority"):
                assert op["x-kaowu-roles"] == ["authority"]


def test_bodies_in_the_document_accept_what_the_services_take(doc):
    body = doc["paths"]["/api/me/applications"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    jsonschema.validate({"session_id": "s", "level": "L1", "registration_point": "2916",
                         "commitment": {"pledge_version": "2026-v1", "signed_name": "王",
                                        "agreed": True}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"session_id": "s", "level": "L3", "registration_point": "2916"},
                            schema)
    section = doc["paths"]["/api/me/profile/{section}"]["put"]["requestBody"]["content"][
        "application/json"]["schema"]
    jsonschema.validate({"gender": "F", "birth_date": "1990-01-01", "ethnicity": " "}, section)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"gender": "X"}, section)


def test_path_conversion():
    assert openapi.openapi_path("/api/me/certificates/<number>/<any(pdf, vc):format>") == (
        "/api/me/certificates/{number}/{format}",
        [{"name": "number", "in": "path", "required": True,
          "schema": {"type": "string", "minLength": 1, "pattern": openapi.TEXT_PATTERN}},
         {"name": "format", "in": "path", "required": True,
          "schema": {"type": "string", "enum": ["pdf", "vc"]}}])
    assert openapi.openapi_path("/x/<int:n>")[1][0]["schema"]["type"] == "integer"


def _params(doc, path, method="get"):
    return {p["name"]: p["schema"] for p in doc["paths"][path][method].get("parameters", [])}


def test_path_and_query_text_refuses_control_characters_as_the_services_do(doc):
    """A path or query string with a control or invisible formatting character is refused
    by every service (shared.fields.Text): the document says so."""
    from marshmallow import ValidationError

    from shared.fields import Text

    text = Text(max_length=100)
    checked = 0
    for path, item in doc["paths"].items():
        for op in item.values():
            for p in op.get("parameters", []):
                schema = p["schema"]
                if schema.get("type") != "string" or "enum" in schema:
                    continue
                # pages answer any text: a token that is "not ours", a file that is not there
                if path.startswith(("/verify/", "/assets/")):
                    assert "pattern" not in schema
                    continue
                checked += 1
                for bad in ("s\x00", "a\x07b", "x\u202ey", "\u200b", "t\nx", "a\U000e0001"):
                    with pytest.raises(jsonschema.ValidationError):
                        jsonschema.validate(bad, schema)
                    with pytest.raises(ValidationError):
                        text.deserialize(bad)
                jsonschema.validate("2026-shanghai 张三.L1_x", schema)
    assert checked > 20


def test_named_loosenesses_are_gone(doc):
    # /credentials/status/{list_no}: the 400 the certificate service gives past its bound
    op = doc["paths"]["/credentials/status/{list_no}"]["get"]
    assert "400" in op["responses"]
    assert _params(doc, "/credentials/status/{list_no}")["list_no"]["maximum"] == 10_000
    assert _params(doc, "/api/status-list")["list"]["maximum"] == 10_000
    # lists bounded as the services bound them
    body = doc["paths"]["/api/me/applications"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert body["properties"]["subjects"]["maxItems"] == MAX_SUBJECTS
    from services.registration.schemas import SubmitApplicationSchema
    from shared.errors import ValidationFailed
    from shared.service import load
    too_many = {"session_id": "s", "level": "L1", "registration_point": "2916",
                "subjects": [f"S{i}" for i in range(MAX_SUBJECTS + 1)]}
    with pytest.raises(ValidationFailed):
        load(SubmitApplicationSchema(), too_many)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(too_many, body)
    proof = doc["paths"]["/api/me/applications/{session_id}/proof"]["post"]["requestBody"]
    files = proof["content"]["multipart/form-data"]["schema"]["properties"]["files"]
    assert files["maxItems"] == MAX_PROOF_FILES
    # the photo is a file (PUT /api/me/photo): no profile section takes it as JSON
    put = doc["paths"]["/api/me/profile/{section}"]["put"]
    assert "photo" not in _params(doc, "/api/me/profile/{section}", "put")["section"]["enum"]
    section = put["requestBody"]["content"]["application/json"]["schema"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"jpeg_base64": "/9j/4AAQ"}, section)
    assert "photo" in _params(doc, "/api/me/profile/{section}")["section"]["enum"]  # GET


def test_verification_page_escapes_and_shows_the_verdict():
    from services.gateway.pages import verify_page

    page = verify_page({"result": "valid", "certificate_number": "JL2026-000001",
                        "name": "<script>alert(1)</script>王*国", "level_name": "一级",
                        "exam_year": 2026, "issued_at": "2026-09-15T10:00:00+08:00"})
    assert 'data-result="valid"' in page and "有效 Valid" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "JL2026-000001" in page and "2026" in page
    revoked = verify_page({"result": "revoked", "reason": "成绩无效", "revoked_at": "2026-10-01"})
    assert "已撤销 Revoked" in revoked and "成绩无效" in revoked
    assert 'data-result="not_ours"' in verify_page({"result": "not_ours"})
    down = verify_page(None, "The certificate service is not running; try again later.")
    assert "Unavailable" in down and "not running" in down


# -------------------------------------------------------------------------- arrivals per hour


def test_arrivals_per_hour_over_the_application_window():
    now = at(2026, 4, 7, 12, 20)  # the window opened at 10:00 the same day
    session = session_answer(REF, now)
    answers = {
        "arrivals.account": ("ok", {"registrations": {
            "2026-04-01T09:00:00+08:00": 4,  # before the window: "earlier"
            "2026-04-07T02:00:00+00:00": 3,  # 10:00 in Shanghai, told in UTC
            "2026-04-07T12:00:00+08:00": 1}}),
        "arrivals.registration": ("ok", {"applications": {"2026-04-07T11:00:00+08:00": 5},
                                         "confirmations": {}}),
    }
    got = dashboard.arrivals(session, now, answers)
    assert [(h["label"], h["registrations"], h["applications"], h["confirmations"])
            for h in got["hours"]] == [("04-07 10:00", 3, 0, 0), ("04-07 11:00", 0, 5, 0),
                                       ("04-07 12:00", 1, 0, 0)]
    assert got["hours"][0]["hour"] == "2026-04-07T10:00:00+08:00"
    assert got["earlier"] == {"registrations": 4, "applications": 0, "confirmations": 0}
    assert got["totals"] == {"registrations": 4, "applications": 5, "confirmations": 0}
    assert got["peak"] == 5
    assert [s["label"] for s in got["series"]] == [
        "注册 registrations", "报名 applications", "核对确认 confirmations"]
    # the same figures in the dashboard's JSON
    assert dashboard.shape(now, [session], session, answers, {}, {})["arrivals"] == got


def test_arrivals_stop_at_the_windows_close_keep_the_last_week_and_mark_what_is_down():
    now = at(2026, 5, 1, 9, 0)  # long after the window (04-07 10:00 to 04-13 16:00)
    session = session_answer(REF, now)
    answers = {"arrivals.account": ("down", "The account service is not running."),
               "arrivals.registration": ("ok", {"applications": {"2026-04-13T16:00:00+08:00": 2},
                                                "confirmations": {"2026-04-13T15:00:00+08:00": 1}})}
    got = dashboard.arrivals(session, now, answers)
    assert got["hours"][-1]["hour"] == "2026-04-13T16:00:00+08:00"
    assert len(got["hours"]) == 6 * 24 + 7  # 10:00 on the 7th to 16:00 on the 13th
    assert all(h["registrations"] is None for h in got["hours"])
    assert got["series"][0]["available"] is False and got["earlier"]["registrations"] is None
    assert (got["hours"][-1]["applications"], got["hours"][-2]["confirmations"]) == (2, 1)

    long = {**session, "windows": {**session["windows"], "application": {
        "start": at(2026, 3, 1).isoformat(), "end": at(2026, 4, 13, 16).isoformat()}}}
    got = dashboard.arrivals(long, now, answers)
    assert len(got["hours"]) == dashboard.MAX_HOURS
    assert got["hours"][0]["hour"] == "2026-04-06T17:00:00+08:00"
    # before the window opens: one (empty) hour, the window's first
    early = at(2026, 4, 1, 9, 0)
    got = dashboard.arrivals(session_answer(REF, early), early, {})
    assert [h["hour"] for h in got["hours"]] == ["2026-04-07T10:00:00+08:00"]
    assert got["totals"] == {"registrations": None, "applications": None, "confirmations": None}


def test_count_by_hour_keys_by_the_shanghai_hour():
    from shared.clock import count_by_hour
    assert count_by_hour(["2026-04-07T10:59:59+08:00", "2026-04-07T02:00:00+00:00",
                          "2026-04-07T11:00:00.5+08:00"]) == {
        "2026-04-07T10:00:00+08:00": 2, "2026-04-07T11:00:00+08:00": 1}
