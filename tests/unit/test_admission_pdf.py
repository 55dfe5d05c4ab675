"""The admission ticket PDF (adapter): what a candidate prints is what the ticket says."""

import base64
from datetime import datetime

from services.admission import ticket_code
from services.admission.exam_rules import EXAM_RULES
from services.admission.ticket_pdf import TicketSheet, render
from shared.clock import SHANGHAI
from shared.pdf import read_pdf
from tests.integration.test_account_flow import jpeg


def test_ticket_pdf_reads_back_with_every_field_and_a_signed_qr():
    key = b"test-key"
    qr = ticket_code.payload(key, "2026-shanghai-jiliang", "20262916L1000007")
    sheet = TicketSheet(
        session_name="2026年度全国注册计量师职业资格考试（上海考区）", name="王建国",
        id_type="resident_id", id_number="310104198805123455", ticket_number="20262916L1000007",
        level_name="一级", venue_name="样例考点一（徐汇）", venue_address="上海市徐汇区（样例地址）",
        room="102", seat=7,
        subjects=(("计量法律法规及综合知识", datetime(2026, 6, 13, 9, tzinfo=SHANGHAI),
                   datetime(2026, 6, 13, 11, 30, tzinfo=SHANGHAI)),),
        rules=EXAM_RULES, qr_payload=qr, photo_jpeg=base64.b64decode(jpeg()))
    pdf = read_pdf(render(sheet))
    assert pdf.pages == 1
    for text in ("准 考 证", "王建国", "310104198805123455", "20262916L1000007", "一级",
                 "样例考点一（徐汇）", "上海市徐汇区（样例地址）", "考场：102", "座位号：7",
                 "计量法律法规及综合知识", "2026年06月13日（周六） 09:00–11:30", "考场规则"):
        assert text in pdf.text, text
    assert qr in pdf.qr_codes
    assert ticket_code.read_payload(key, qr) == ("2026-shanghai-jiliang", "20262916L1000007")


def test_ticket_pdf_without_a_photo_still_renders():
    sheet = TicketSheet("考试", "李敏", "passport", "E12345678", "T1", "二级", "考点", "地址", "201",
                        1, (), ("守规则",), "KWADM1|x|s|T1")
    pdf = read_pdf(render(sheet))
    assert "护照" in pdf.text and "照片" in pdf.text and pdf.qr_codes == ("KWADM1|x|s|T1",)
