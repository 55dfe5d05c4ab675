"""web/cached.sh: the site's npm packages and build kept in the machine's cache by what
they are made from, run here on copies of web/ with a stand-in ``npm`` and ``node`` that
record what they were asked to do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "web" / "cached.sh"

NPM = """#!/bin/sh
# stand-in npm: records its arguments; ci and run build make what npm would
echo "$*" >> "$NPM_LOG"
case "$1" in
  --version) echo 10.9.0 ;;
  ci) rm -rf node_modules && mkdir -p node_modules/vue && cp package-lock.json node_modules/vue/lock ;;
  run) out=../services/gateway/static/site && rm -rf "$out" && mkdir -p "$out/assets" &&
       cat src/* > "$out/assets/app.js" && cp index.html "$out/index.html" ;;
esac
"""
NODE = "#!/bin/sh\necho v20.20.2\n"


def checkout(base: Path, name: str) -> Path:
    """A new checkout's web/ (and the folder its site is built into)."""
    web = base / name / "web"
    (web / "src").mkdir(parents=True)
    shutil.copy(SCRIPT, web / "cached.sh")
    (web / "package.json").write_text('{"name": "site"}\n')
    (web / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    (web / "index.html").write_text("<div id=app></div>\n")
    (web / "vite.config.js").write_text("export default {}\n")
    (web / "src" / "main.js").write_text("console.log('hi')\n")
    return web


@pytest.fixture
def env(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, text in (("npm", NPM), ("node", NODE)):
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}",
            "KAOWU_CACHE": str(tmp_path / "cache"), "NPM_LOG": str(tmp_path / "npm.log")}


def run(web: Path, what: str, env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(web / "cached.sh"), what], cwd=web, env=env,
                          capture_output=True, text=True, check=False)


def asked(env) -> list[str]:
    """What npm was asked to do (its version asks left out), and forget it."""
    log = Path(env["NPM_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [line for line in lines if line != "--version"]


def test_a_new_checkout_takes_the_packages_from_the_cache_as_links(tmp_path, env):
    first = checkout(tmp_path, "one")
    assert run(first, "packages", env).returncode == 0
    assert asked(env) == ["ci --no-audit --no-fund"]

    second = checkout(tmp_path, "two")
    done = run(second, "packages", env)
    assert done.returncode == 0, done.stderr
    assert asked(env) == []
    assert "from the cache" in done.stdout
    lock = second / "node_modules" / "vue" / "lock"
    assert lock.read_text() == '{"lockfileVersion": 3}\n'
    # hard links to the cache's copy, not to the first checkout's files
    entry = next((tmp_path / "cache" / "packages").iterdir())
    assert lock.stat().st_ino == (entry / "tree" / "vue" / "lock").stat().st_ino
    assert lock.stat().st_ino != (first / "node_modules" / "vue" / "lock").stat().st_ino


def test_another_lockfile_or_node_installs_again(tmp_path, env):
    assert run(checkout(tmp_path, "one"), "packages", env).returncode == 0
    asked(env)
    changed = checkout(tmp_path, "two")
    (changed / "package-lock.json").write_text('{"lockfileVersion": 3, "v": 2}\n')
    assert run(changed, "packages", env).returncode == 0
    assert asked(env) == ["ci --no-audit --no-fund"]
    assert (changed / "node_modules" / "vue" / "lock").read_text().endswith('"v": 2}\n')

    node = Path(env["PATH"].split(":")[0]) / "node"
    node.write_text("#!/bin/sh\necho v22.1.0\n")
    assert run(checkout(tmp_path, "three"), "packages", env).returncode == 0
    assert asked(env) == ["ci --no-audit --no-fund"]


def test_the_site_is_built_once_per_content_of_its_sources(tmp_path, env):
    first = checkout(tmp_path, "one")
    assert run(first, "site", env).returncode == 0
    assert asked(env) == ["run build"]

    second = checkout(tmp_path, "two")
    assert run(second, "site", env).returncode == 0
    assert asked(env) == []
    site = tmp_path / "two" / "services" / "gateway" / "static" / "site"
    assert (site / "assets" / "app.js").read_text() == "console.log('hi')\n"
    # real copies: nothing the checkout does to its site reaches the cache
    entry = next((tmp_path / "cache" / "site").iterdir())
    assert (site / "index.html").stat().st_ino != (entry / "tree" / "index.html").stat().st_ino

    edited = checkout(tmp_path, "three")
    (edited / "src" / "main.js").write_text("console.log('changed')\n")
    assert run(edited, "site", env).returncode == 0
    assert asked(env) == ["run build"]
    added = checkout(tmp_path, "four")
    (added / "src" / "extra.js").write_text("")  # a new file, even an empty one
    assert run(added, "site", env).returncode == 0
    assert asked(env) == ["run build"]


def test_an_entry_not_complete_is_made_again_and_old_entries_are_dropped(tmp_path, env):
    web = checkout(tmp_path, "one")
    assert run(web, "packages", env).returncode == 0
    asked(env)
    entry = next((tmp_path / "cache" / "packages").iterdir())
    (entry / ".complete").unlink()  # as if cut off before it was finished
    assert run(checkout(tmp_path, "two"), "packages", env).returncode == 0
    assert asked(env) == ["ci --no-audit --no-fund"]
    assert (entry / ".complete").exists()

    for n in range(5):
        other = checkout(tmp_path, f"v{n}")
        (other / "package-lock.json").write_text(f'{{"v": {n}}}\n')
        assert run(other, "packages", env).returncode == 0
    assert len(list((tmp_path / "cache" / "packages").iterdir())) == 3


def test_a_cache_that_cannot_be_written_still_installs(tmp_path, env):
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    web = checkout(tmp_path, "one")
    done = run(web, "packages", env)
    assert done.returncode == 0, done.stderr
    assert asked(env) == ["ci --no-audit --no-fund"]
    assert (web / "node_modules" / "vue" / "lock").exists()


def test_a_typo_is_refused_with_the_usage(tmp_path, env):
    done = run(checkout(tmp_path, "one"), "pakages", env)
    assert done.returncode == 2
    assert "usage: web/cached.sh packages|site" in done.stderr
