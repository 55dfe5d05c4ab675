"""HTML the gateway serves: the certificate verification page (证书查询验证, the QR code on
every certificate points here) and the operator dashboard's static files.

Everything shown is escaped; the pages load nothing from elsewhere (no CDN: the exam
network may have no internet) and run under a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"

_RESULTS = {
    "valid": ("有效 Valid", "This certificate was issued by the exam authority and stands."),
    "revoked": ("已撤销 Revoked", "This certificate was issued but has been revoked."),
    "not_ours": ("未找到 Not found", "No certificate with this number or link was issued here."),
    "invalid": ("无效 Invalid", "This is not a genuine certificate of the exam authority."),
}
_FIELDS = (
    ("certificate_number", "证书编号 Certificate number"),
    ("name", "姓名 Holder"),
    ("qualification", "资格 Qualification"),
    ("level_name", "级别 Level"),
    ("exam_year", "考试年度 Exam year"),
    ("issued_at", "发证时间 Issued"),
    ("issuer", "发证机构 Issuer"),
    ("revoked_at", "撤销时间 Revoked"),
    ("reason", "撤销原因 Reason"),
    ("detail", "说明 Detail"),
)


def static_file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def verify_page(result: dict | None, problem: str | None = None) -> str:
    """The verification result as a page: the verdict first, then the facts."""
    e = html.escape
    if result is None:
        verdict, explain, kind = "暂时无法查询 Unavailable", problem or "Try again later.", "down"
        rows = ""
    else:
        kind = str(result.get("result", "invalid"))
        verdict, explain = _RESULTS.get(kind, (kind, ""))
        rows = "".join(f"<tr><th>{e(label)}</th><td>{e(str(result[key]))}</td></tr>"
                       for key, label in _FIELDS if result.get(key) not in (None, ""))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>证书查询验证 Certificate verification</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css"></head>
<body class="verify">
<h1>证书查询验证 <small>Certificate verification</small></h1>
<p class="verdict {e(kind)}" data-result="{e(kind)}">{e(verdict)}</p>
<p>{e(explain)}</p>
<table class="facts">{rows}</table>
</body></html>
"""
