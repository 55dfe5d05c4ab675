"""The exam authority's 报考条件 screen in Chromium: the years with their version in force
(2026 shipped), a refused 2027 document with every problem listed in Chinese beside the
editor and nothing loaded, then a good one shown as 2027's first version with who and why."""

import pytest

from services.verification.rules import shipped_path
from tests.e2e.conftest import Page
from tests.integration.test_gateway_flow import STAFF_PEOPLE

pytestmark = pytest.mark.integration

BAD_2027 = """exam_year: 2027
education_levels: [本科, 硕士]
levels:
  L1:
    name: 一级
    years:
      大学: 3
      本科: {science_engineering: -1}
"""


def test_authority_sees_and_loads_the_rules_of_an_exam_year(site_stack, browser, shot, axe_check,
                                                            tmp_path):
    stack, api = site_stack, site_stack.api
    authority = stack.staff("authority")
    page = Page(browser, stack.base)
    page.open("/login")
    page.type("username", STAFF_PEOPLE["authority"]["username"])
    page.type("password", STAFF_PEOPLE["authority"]["password"])
    page.click("signin-submit")
    page.wait_route("/authority/")
    page.open("/authority/rules")
    page.wait_text("rule-years", "2026")
    page.wait_text("rule-year", "2026 年度报考条件")
    table = page.wait_text("rule-table", "理工类 3 年，其他 4 年")  # 一级, 本科
    assert "一级（L1）" in table and "二级（L2）" in table
    assert "随程序提供" in page.text("rule-versions")
    shot("rules-2026")
    axe_check("rules-2026")

    # a bad 2027 document: every problem beside the editor, in Chinese; nothing loaded
    page.type("rule-year-input", "2027")
    page.driver.execute_script(  # set as a paste would (typing YAML would auto-indent nothing,
        # but send_keys of 100 lines is slow)
        "const t = arguments[0]; t.value = arguments[1];"
        "t.dispatchEvent(new Event('input', {bubbles: true}))", page.field("rule-yaml"), BAD_2027)
    page.type("rule-reason", "2027年度报考条件")
    page.click("rule-submit")
    problems = page.wait_text("rule-problems", "处问题")
    for path in ("levels.L1.years.大学", "levels.L1.years.本科.science_engineering",
                 "levels.L1.years.本科.other"):
        assert path in problems
    assert "education_levels 中没有这个学历层次" in problems
    assert "not one of" not in problems and "whole number" not in problems
    shot("rules-2027-refused")
    assert api.get("/api/authority/rules/2027", authority).status_code == 404

    # the good one, chosen as a file: 2027's first version, with who and why
    good = tmp_path / "2027.yml"
    good.write_text(shipped_path(2026).read_text(encoding="utf-8")
                    .replace("exam_year: 2026", "exam_year: 2027"), encoding="utf-8")
    page.attach("rule-file", good)
    page.wait(lambda d: "exam_year: 2027" in page.field("rule-yaml").get_attribute("value"),
              what="the file in the editor")
    page.click("rule-submit")
    page.wait_text("rule-loaded", "已载入 2027 年度第 1 版")
    assert not browser.find_elements("css selector", '[data-test="rule-problems"]')
    page.wait_text("rule-year", "2027 年度报考条件 · 第 1 版")
    versions = page.wait_text("rule-versions", "2027年度报考条件")
    assert STAFF_PEOPLE["authority"]["username"] in versions or stack.accounts["authority"] in versions
    years = page.wait_text("rule-years", "2027")
    assert "2026" in years
    shot("rules-2027-loaded")
    assert api.get("/api/authority/rules/2027", authority).json()["in_force"] == 1
