"""shared.pdf: the QR codes and the reportlab set-up that tickets and certificates share."""

import io

import pytest
import qrcode
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from reportlab.pdfbase import pdfmetrics

from services.admission import ticket_code
from services.admission.ticket_pdf import TicketSheet, render
from services.certificate.pdf import render_certificate
from shared.pdf import FONT_NAME, QR_MASK_PATTERN, cjk_font, qr_png, read_pdf


def decode(png: bytes) -> list[str]:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return [f.text for f in found if f.format == zxingcpp.BarcodeFormat.QRCode]


def test_the_mask_is_fixed_not_searched(monkeypatch):
    def search(self):
        raise AssertionError("qrcode searched the eight masks")

    monkeypatch.setattr(qrcode.QRCode, "best_mask_pattern", search)
    assert decode(qr_png("KWADM1|x|s|T1")) == ["KWADM1|x|s|T1"]
    assert 0 <= QR_MASK_PATTERN <= 7


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=300),
        st.builds(
            lambda key, session, number: ticket_code.payload(key, session, number),
            st.binary(min_size=1, max_size=32),
            st.from_regex(r"[0-9]{4}-[a-z]{3,12}-[a-z]{3,10}", fullmatch=True),
            st.from_regex(r"[0-9]{8}L[0-9]{7}", fullmatch=True),
        ),
    )
)
def test_a_qr_with_the_fixed_mask_reads_back(payload):
    assert decode(qr_png(payload)) == [payload]


def test_a_rendered_ticket_carries_its_qr_and_no_ascii85():
    qr = ticket_code.payload(b"test-key", "2026-shanghai-jiliang", "20262916L1000007")
    sheet = TicketSheet(
        "考试",
        "李敏",
        "passport",
        "E12345678",
        "20262916L1000007",
        "二级",
        "考点",
        "地址",
        "201",
        1,
        (),
        ("守规则",),
        qr,
    )
    data = render(sheet)
    assert read_pdf(data).qr_codes == (qr,)
    assert b"ASCII85Decode" not in data  # streams are Flate only


def _certificate():
    cert = {
        "certificate_number": "JL202610000001",
        "name": "王建国",
        "id_type": "resident_id",
        "id_number": "310104198805123455",
        "level": "L1",
        "exam_year": 2026,
        "issued_at": "2026-09-15T10:00:00+08:00",
    }
    return render_certificate(cert, "https://kaowu.example/verify/tok", "上海市职业能力考试院")


def test_font_tables_are_copied_once_and_the_pdf_is_the_same(monkeypatch):
    cjk_font()
    face = pdfmetrics.getFont(FONT_NAME).face
    assert face.get_table("glyf") is face.get_table("glyf")  # cached, not sliced again
    cached = _certificate()
    # the same certificate from reportlab's own, uncached get_table: the same bytes
    monkeypatch.delattr(face, "get_table")
    assert face.get_table("glyf") is not face.get_table("glyf")
    assert _certificate() == cached
    assert read_pdf(cached).qr_codes == ("https://kaowu.example/verify/tok",)


@pytest.mark.parametrize("tag", ["glyf", "head", "hhea", "maxp", "post", "name", "OS/2"])
def test_a_cached_table_is_the_table(tag):
    cjk_font()
    face = pdfmetrics.getFont(FONT_NAME).face
    assert face.get_table(tag) == type(face).get_table(face, tag)
