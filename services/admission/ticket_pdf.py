"""The admission ticket as a PDF (准考证), with reportlab: an adapter, not the domain.

One A4 page: the session's name, the candidate's photo, name, identity document, ticket
number, level, the venue (name and address), room and seat, each subject with its name and
time, the exam rules (考场规则, ``exam_rules.EXAM_RULES``) and a QR code of the ticket's
signed payload (``ticket_code``). Chinese text uses the CJK font from ``shared.pdf``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from shared.clock import SHANGHAI
from shared.pdf import cjk_font, image_reader, qr_png

ID_TYPE_LABELS = {"resident_id": "居民身份证", "passport": "护照",
                  "hk_macao_permit": "港澳居民来往内地通行证", "taiwan_permit": "台湾居民来往大陆通行证"}
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class TicketSheet:
    """What the ticket shows; built by the service from the read model and the session."""

    session_name: str
    name: str
    id_type: str
    id_number: str
    ticket_number: str
    level_name: str
    venue_name: str
    venue_address: str
    room: str
    seat: int
    subjects: tuple[tuple[str, datetime, datetime], ...]  # (name, start, end)
    rules: tuple[str, ...]
    qr_payload: str
    photo_jpeg: bytes | None = None


def _when(start: datetime, end: datetime) -> str:
    s, e = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    return f"{s:%Y年%m月%d日}（周{WEEKDAYS[s.weekday()]}） {s:%H:%M}–{e:%H:%M}"


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for ch in text:
        if stringWidth(line + ch, font, size) > width and line:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line else lines


def render(sheet: TicketSheet) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    font = cjk_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle(f"准考证 {sheet.ticket_number}")
    c.setAuthor("Kaowu")
    w, h = A4
    left, right = 20 * mm, w - 20 * mm

    c.setFont(font, 14)
    c.drawCentredString(w / 2, h - 22 * mm, sheet.session_name)
    c.setFont(font, 24)
    c.drawCentredString(w / 2, h - 34 * mm, "准 考 证")
    c.setLineWidth(0.8)
    c.line(left, h - 39 * mm, right, h - 39 * mm)

    # the photo, top right (295×413 px: 30×42 mm)
    pw, ph = 30 * mm, 42 * mm
    px, py = right - pw, h - 45 * mm - ph
    if sheet.photo_jpeg:
        c.drawImage(image_reader(sheet.photo_jpeg), px, py, pw, ph)
    else:
        c.setFont(font, 10)
        c.drawCentredString(px + pw / 2, py + ph / 2, "照片")
    c.rect(px, py, pw, ph)

    fields = [
        f"姓名：{sheet.name}",
        f"证件类型：{ID_TYPE_LABELS.get(sheet.id_type, sheet.id_type)}",
        f"证件号码：{sheet.id_number}",
        f"准考证号：{sheet.ticket_number}",
        f"报考级别：{sheet.level_name}",
        f"考点名称：{sheet.venue_name}",
        f"考点地址：{sheet.venue_address}",
        f"考场：{sheet.room}",
        f"座位号：{sheet.seat}",
    ]
    y = h - 50 * mm
    c.setFont(font, 12)
    for text in fields:
        for line in _wrap(text, font, 12, px - left - 6 * mm):
            c.drawString(left, y, line)
            y -= 7.5 * mm

    y = min(y, py) - 6 * mm
    c.setFont(font, 13)
    c.drawString(left, y, "考试科目及时间")
    y -= 2.5 * mm
    c.line(left, y, right, y)
    c.setFont(font, 11)
    for name, start, end in sheet.subjects:
        y -= 7 * mm
        c.drawString(left, y, name)
        c.drawString(left + 85 * mm, y, _when(start, end))
    y -= 4 * mm
    c.line(left, y, right, y)

    y -= 9 * mm
    c.setFont(font, 13)
    c.drawString(left, y, "考场规则")
    c.setFont(font, 9.5)
    qr_size = 36 * mm
    text_width = right - left - qr_size - 6 * mm
    top_of_rules = y
    for i, rule in enumerate(sheet.rules, 1):
        for j, line in enumerate(_wrap(rule, font, 9.5, text_width - 6 * mm)):
            y -= 5.2 * mm
            c.drawString(left + (0 if j == 0 else 5 * mm), y, f"{i}. {line}" if j == 0 else line)

    qx, qy = right - qr_size, top_of_rules - qr_size - 2 * mm
    c.drawImage(image_reader(qr_png(sheet.qr_payload, box_size=8)), qx, qy, qr_size, qr_size)
    c.setFont(font, 8)
    c.drawCentredString(qx + qr_size / 2, qy - 4 * mm, "入场时扫码核验")

    c.setFont(font, 9)
    c.drawCentredString(w / 2, 15 * mm, "请携带本准考证及有效身份证件按时参加考试。准考证信息有误请及时联系报名点。")
    c.showPage()
    c.save()
    return buf.getvalue()
