"""The electronic certificate as a PDF (adapter: reportlab, the CJK font, a QR code).

A4 landscape: the certificate's Chinese text (holder, document, qualification and level,
exam year, certificate number, issue date, issuer) and a QR code to the public
verification page ``{PUBLIC_BASE_URL}/verify/{token}``, whose URL is printed beside it.
Rendered on download from what the log holds; ``invariant`` output, so the same
certificate gives the same bytes.
"""

from __future__ import annotations

import io

from services.certificate import domain
from shared.clock import SHANGHAI, parse_iso
from shared.pdf import cjk_font, image_reader, qr_png

ID_TYPE_LABELS = {"resident_id": "居民身份证", "passport": "护照",
                  "hk_macao_permit": "港澳居民来往内地通行证",
                  "taiwan_permit": "台湾居民来往大陆通行证"}


def _date(iso_text: str) -> str:
    d = parse_iso(iso_text).astimezone(SHANGHAI)
    return f"{d.year}年{d.month:02d}月{d.day:02d}日"


def render_certificate(cert: dict, verify_url: str, issuer_name: str) -> bytes:
    """``cert``: certificate_number, name, id_type, id_number, level, exam_year, issued_at."""
    from reportlab.lib.colors import HexColor
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen import canvas

    font = cjk_font()
    width, height = landscape(A4)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width, height), invariant=1)
    title = f"{domain.level_title(cert['level'])}职业资格证书"
    c.setTitle(f"{title} {cert['certificate_number']}")
    c.setAuthor(issuer_name)
    c.setSubject("电子证书")

    red, ink = HexColor("#9b1c1c"), HexColor("#1f2937")
    c.setStrokeColor(red)
    c.setLineWidth(3)
    c.rect(24, 24, width - 48, height - 48)
    c.setLineWidth(0.8)
    c.rect(32, 32, width - 64, height - 64)

    c.setFillColor(red)
    c.setFont(font, 16)
    c.drawCentredString(width / 2, height - 84, "中华人民共和国")
    c.setFont(font, 30)
    c.drawCentredString(width / 2, height - 126, title)
    c.setFont(font, 12)
    c.drawCentredString(width / 2, height - 150, "电子证书")

    c.setFillColor(ink)
    c.setFont(font, 13)
    statement = (f"持证人通过{cert['exam_year']}年度全国{domain.QUALIFICATION_NAME}职业资格考试，"
                 f"取得{domain.level_title(cert['level'])}职业资格，特发此证。")
    c.drawCentredString(width / 2, height - 190, statement)

    rows = [
        ("姓　　名", cert["name"]),
        ("证件类型", ID_TYPE_LABELS.get(cert["id_type"], cert["id_type"])),
        ("证件号码", cert["id_number"]),
        ("资格名称", domain.QUALIFICATION_NAME),
        ("资格级别", domain.level_title(cert["level"])),
        ("考试年度", f"{cert['exam_year']}年"),
        ("证书编号", cert["certificate_number"]),
        ("签发日期", _date(cert["issued_at"])),
        ("签发机构", issuer_name),
    ]
    y = height - 236
    for label, value in rows:
        c.setFont(font, 13)
        c.drawString(120, y, f"{label}：")
        c.setFont(font, 14)
        c.drawString(210, y, str(value))
        y -= 26

    qr = 132
    qx, qy = width - 80 - qr, 90
    c.drawImage(image_reader(qr_png(verify_url, box_size=8, border=2)), qx, qy, qr, qr)
    c.setFont(font, 10)
    c.drawCentredString(qx + qr / 2, qy - 14, "扫码查询验证本证书")
    c.setFont(font, 8)
    c.drawString(60, 52, f"查询验证：{verify_url}")
    c.drawString(60, 40, "本电子证书附有签发机构的数字签名（可验证凭证），可在线查询其有效性。")
    c.showPage()
    c.save()
    return buf.getvalue()
