"""HTML the gateway serves: the certificate verification page (证书查询验证, the QR code on
every certificate points here), its style sheet, and the web site (built by Vite from web/).

Everything shown is escaped; the pages load nothing from elsewhere (no CDN: the exam
network may have no internet) and run under a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
from pathlib import Path

from shared.clock import parse_iso, shanghai

STATIC = Path(__file__).resolve().parent / "static"

_RESULTS = {
    "valid": ("有效 Valid", "该证书由考试机构颁发，现行有效。"
              "This certificate was issued by the exam authority and stands."),
    "revoked": ("已撤销 Revoked", "该证书曾由考试机构颁发，但已被撤销，不再有效。"
                "This certificate was issued but has been revoked."),
    "not_ours": ("未找到 Not found", "没有找到该编号或链接的证书。"
                 "No certificate with this number or link was issued here."),
    "invalid": ("无效 Invalid", "这不是考试机构颁发的真实证书。"
                "This is not a genuine certificate of the exam authority."),
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
_TIMES = ("issued_at", "revoked_at")


def static_file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


# --------------------------------------------------------------------------- the web site
# The candidate/staff web site (报名网站) is built by Vite from web/ into static/site/
# (`make site`; gitignored). Its assets have content hashes in their names: cached for good.

SITE = STATIC / "site"
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
               ".png": "image/png", ".jpg": "image/jpeg", ".woff2": "font/woff2",
               ".woff": "font/woff", ".ttf": "font/ttf", ".json": "application/json",
               ".map": "application/json", ".ico": "image/x-icon"}

SITE_MISSING = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>报名网站尚未构建 The web site is not built</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/verify/style.css"></head>
<body class="verify">
<h1>报名网站尚未构建 <small>The web site is not built</small></h1>
<p>The gateway serves the web site from <code>services/gateway/static/site/</code>, which is
built from <code>web/</code>. Run <code>make site</code> (or <code>make run</code>, which
builds it first) and reload this page.</p>
<p>请在项目目录运行 <code>make site</code> 构建网站后刷新本页。</p>
</body></html>
"""


def site_index() -> bytes | None:
    """The site's index.html, or None when the site is not built."""
    try:
        return (SITE / "index.html").read_bytes()
    except FileNotFoundError:
        return None


def site_asset(path: str) -> tuple[bytes, str] | None:
    """A built asset under static/site/assets/ with its media type; None if there is no
    such file (or the path leaves the folder, or is of a type the site does not use)."""
    root = (SITE / "assets").resolve()
    try:
        target = (root / path).resolve()
    except (OSError, ValueError):
        return None
    kind = ASSET_TYPES.get(target.suffix.lower())
    if kind is None or not target.is_relative_to(root) or not target.is_file():
        return None
    return target.read_bytes(), kind


def _shown(key: str, value) -> str:
    """A fact as people read it: times in Asia/Shanghai to the second (北京时间)."""
    if key in _TIMES and isinstance(value, str):
        try:
            return f"{shanghai(parse_iso(value))}（北京时间）"
        except ValueError:
            return value
    return str(value)


def verify_page(result: dict | None, problem: str | None = None,
                issuer_name: str | None = None) -> str:
    """The verification result as a page in the web site's look: the verdict first, then
    the facts; times in Beijing time, the issuer by its name (``issuer_name``) when known."""
    e = html.escape
    if result is None:
        verdict, explain, kind = "暂时无法查询 Unavailable", problem or "Try again later.", "down"
        rows = ""
    else:
        kind = str(result.get("result", "invalid"))
        verdict, explain = _RESULTS.get(kind, (kind, ""))
        facts = dict(result)
        if issuer_name and facts.get("issuer"):
            facts["issuer"] = issuer_name
        rows = "".join(f"<tr><th scope=\"row\">{e(label)}</th><td>{e(_shown(key, facts[key]))}</td></tr>"
                       for key, label in _FIELDS if facts.get(key) not in (None, ""))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>证书查询验证 Certificate verification</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/verify/style.css"></head>
<body class="verify">
<header class="site-bar"><a class="site-bar__brand" href="/"><span class="site-bar__emblem" aria-hidden="true">考</span>
<span>职业资格考试报名网站</span></a></header>
<main>
<h1>证书查询验证 <small>Certificate verification</small></h1>
<div class="verdict-box {e(kind)}">
<p class="verdict {e(kind)}" data-result="{e(kind)}">{e(verdict)}</p>
<p>{e(explain)}</p>
</div>
<table class="facts">{rows}</table>
<p class="more"><a href="/#/verify">按证书编号查询其他证书 Check another certificate by its number</a></p>
</main>
</body></html>
"""
