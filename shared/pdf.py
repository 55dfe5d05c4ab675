"""PDF building blocks shared by admission tickets and certificates: a real CJK font, QR
codes as embedded images, and reading a PDF back (text and decoded QR codes).

The font is WenQuanYi Zen Hei from Debian's ``fonts-wqy-zenhei`` (the Makefile installs
it): reportlab embeds TrueType outlines, so Chinese names print on any viewer. ``KAOWU_CJK_FONT``
points at another TrueType/TTC file if a deployment prefers one.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FONT_NAME = "KaowuCJK"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


class FontMissing(RuntimeError):
    pass


#: The QR mask pattern, fixed: qrcode otherwise builds the symbol with each of the eight
#: masks to pick the one its penalty rules score best, most of the time a QR code took.
#: Any of the eight is valid for a reader; 4 is the one qrcode picked most often for
#: ticket payloads.
QR_MASK_PATTERN = 4


@cache
def cjk_font() -> str:
    """Register the CJK font with reportlab once; its name for ``setFont``.

    Every PDF here calls it first, so it also sets reportlab up for them, once: streams
    are only Flate-compressed, not ASCII85-encoded as well (reportlab's default, done in
    Python unless its C accelerator is installed, and it makes them a quarter larger).
    """
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    rl_config.useA85 = 0

    configured = os.environ.get("KAOWU_CJK_FONT")
    paths = [configured] if configured else list(FONT_CANDIDATES)
    for path in paths:
        if path and Path(path).is_file():
            kw = {"subfontIndex": 0} if path.endswith(".ttc") else {}
            font = TTFont(FONT_NAME, path, **kw)
            # reportlab subsets the font for every PDF (one or two subsets a ticket) and
            # each subset sliced the whole glyph table (10 MB of WenQuanYi) out of the
            # file's bytes again: the tables never change, so each is copied out once
            font.face.get_table = cache(font.face.get_table)
            pdfmetrics.registerFont(font)
            return FONT_NAME
    raise FontMissing(
        f"No CJK TrueType font found (looked at {', '.join(p for p in paths if p)}); "
        "run `make venv` (installs fonts-wqy-zenhei) or set KAOWU_CJK_FONT.")


def qr_png(data: str, box_size: int = 6, border: int = 2) -> bytes:
    """A QR code (error correction M) as PNG bytes."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M,
        box_size=box_size,
        border=border,
        mask_pattern=QR_MASK_PATTERN,
    )
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    return buf.getvalue()


def image_reader(data: bytes):
    """Image bytes (PNG, JPEG) as something ``canvas.drawImage`` takes."""
    from reportlab.lib.utils import ImageReader

    return ImageReader(io.BytesIO(data))


@dataclass(frozen=True)
class PdfContent:
    text: str
    qr_codes: tuple[str, ...]
    pages: int


def read_pdf(data: bytes) -> PdfContent:
    """The text of every page and the payload of every QR code among the embedded images."""
    import pypdf
    import zxingcpp

    reader = pypdf.PdfReader(io.BytesIO(data))
    texts, codes = [], []
    for page in reader.pages:
        texts.append(page.extract_text() or "")
        for img in page.images:
            for found in zxingcpp.read_barcodes(img.image):
                if found.format == zxingcpp.BarcodeFormat.QRCode:
                    codes.append(found.text)
    return PdfContent("\n".join(texts), tuple(codes), len(reader.pages))
