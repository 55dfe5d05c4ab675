"""The gateway's web-site files (services.gateway.pages): the built index, hashed assets
only from inside static/site/assets/, and a clear page when the site is not built."""

from services.gateway import pages


def test_assets_come_only_from_the_assets_folder(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "assets" / "index-abc.js").write_text("console.log(1)")
    (site / "assets" / "notes.txt").write_text("not a site file type")
    (site / "index.html").write_text("<!doctype html>")
    (tmp_path / "secret.js").write_text("secret")
    monkeypatch.setattr(pages, "SITE", site)

    assert pages.site_index() == b"<!doctype html>"
    assert pages.site_asset("index-abc.js") == (b"console.log(1)", "text/javascript")
    for bad in ("../index.html", "../../secret.js", "/etc/passwd", "nothing.js", "notes.txt",
                "", ".", "a\x00.js"):
        assert pages.site_asset(bad) is None, bad


def test_a_missing_build_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(pages, "SITE", tmp_path / "nothing")
    assert pages.site_index() is None
    assert pages.site_asset("index.js") is None
    assert "make site" in pages.SITE_MISSING and "<script" not in pages.SITE_MISSING
