"""The pages' Content-Security-Policy: proof and photos may be shown from blob: URLs (the
staff case page fetches them with the token), and nothing else is loosened."""

from services.gateway.web import PAGE_CSP


def directives():
    return {d.split()[0]: d.split()[1:] for d in PAGE_CSP.split("; ")}


def test_blob_urls_for_images_and_frames_only():
    d = directives()
    assert d["img-src"] == ["'self'", "data:", "blob:"]
    assert d["frame-src"] == ["'self'", "blob:"]
    assert d["object-src"] == ["'none'"]


def test_scripts_and_styles_stay_same_origin_only():
    d = directives()
    assert d["script-src"] == ["'self'"] and d["style-src"] == ["'self'"]
    assert d["default-src"] == ["'self'"] and d["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in PAGE_CSP and "blob:" not in " ".join(d["script-src"] + d["connect-src"])
