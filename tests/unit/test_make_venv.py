"""``make venv`` as the Makefile has it, run in a copy of the project's set-up files with a
stand-in Python and uv that record what they were asked to do: a new .venv has no pip and
gets the pinned packages from uv; uv is brought once per machine into the cache; a .venv
made by another Python is made anew."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV_VERSION = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(),
                       re.MULTILINE).group(1)

# a Python that knows what make asks of it: its identity, making a venv, pip installing uv
PYTHON = """#!/bin/sh
echo "python $*" >> "$FAKE_LOG"
case "$1" in
  -c) echo "${IDENTITY:-$FAKE_ID}" ;;
  -m) case "$2" in
        venv) for dir; do :; done
              mkdir -p "$dir/bin" && sed "2i IDENTITY='$FAKE_ID'" "$0" > "$dir/bin/python" &&
              chmod +x "$dir/bin/python" ;;
        pip) printf '#!/bin/sh\\necho "uv $*" >> "$FAKE_LOG"\\n' > "$(dirname "$0")/uv" &&
             chmod +x "$(dirname "$0")/uv" ;;
      esac ;;
esac
"""


@pytest.fixture
def project(tmp_path):
    """The set-up files in a folder of their own, the system packages' stamp already there
    (apt is not what this tests), a Python of the machine's and an empty cache."""
    work = tmp_path / "project"
    work.mkdir()
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, work / name)
    (work / ".venv").mkdir()
    (work / ".venv" / ".system-run").touch()
    python = tmp_path / "python3.11"
    python.write_text(PYTHON)
    python.chmod(0o755)
    return work


def make(work: Path, tmp_path: Path, identity="/usr 3.11.2") -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_ID": identity,
           "KAOWU_CACHE": str(tmp_path / "cache")}
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(["make", "--no-print-directory", "venv",
                           f"PYTHON={tmp_path / 'python3.11'}"],
                          cwd=work, env=env, capture_output=True, text=True, check=False)
    return done, log.read_text().splitlines() if log.exists() else []


def test_a_new_venv_has_no_pip_and_gets_the_pinned_packages_from_uv(project, tmp_path):
    done, calls = make(project, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    uv = tmp_path / "cache" / f"uv-{UV_VERSION}" / "uv"
    assert uv.is_file() and os.access(uv, os.X_OK)  # brought once into the machine's cache
    assert any(f"-m pip install --quiet --disable-pip-version-check uv=={UV_VERSION}" in c
               for c in calls)
    venv = [c for c in calls if " -m venv " in c]
    assert venv[-1].endswith("-m venv --without-pip .venv")
    installs = [c for c in calls if c.startswith("uv pip install")]
    assert installs == [
        "uv pip install --python .venv/bin/python --system-certs --compile-bytecode "
        "-c constraints.txt -e .[cli,dev] --offline -q"]
    assert (project / ".venv" / ".installed").exists()

    # nothing changed: nothing to do, and the cached uv is used as it is
    done, calls = make(project, tmp_path)
    assert done.returncode == 0
    assert not [c for c in calls if " -m " in c or c.startswith("uv ")]

    # another checkout on the same machine: no pip anywhere, uv from the cache
    other = tmp_path / "other"
    shutil.copytree(project, other, ignore=shutil.ignore_patterns("bin", ".installed"))
    done, calls = make(other, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [c for c in calls if "pip install --quiet" in c]
    assert [c for c in calls if c.startswith("uv pip install")]


def test_a_venv_made_by_another_python_is_made_anew(project, tmp_path):
    assert make(project, tmp_path)[0].returncode == 0
    (project / ".venv" / "leftover").touch()
    done, calls = make(project, tmp_path, identity="/opt/python 3.11.9")
    assert done.returncode == 0, done.stderr
    assert ".venv was made by another Python: made anew by" in done.stdout
    assert not (project / ".venv" / "leftover").exists()
    assert any(c.endswith("-m venv --without-pip .venv") for c in calls)
    assert [c for c in calls if c.startswith("uv pip install")]


def test_a_failed_install_leaves_no_stamp(project, tmp_path):
    assert make(project, tmp_path)[0].returncode == 0
    uv = tmp_path / "cache" / f"uv-{UV_VERSION}" / "uv"
    uv.write_text('#!/bin/sh\necho "uv $*" >> "$FAKE_LOG"\nexit 1\n')
    (project / "constraints.txt").write_text((project / "constraints.txt").read_text() + "\n")
    done, calls = make(project, tmp_path)
    assert done.returncode != 0
    assert len([c for c in calls if c.startswith("uv pip install")]) == 2  # offline, then online
    # the stamp is older than the constraints it was made for: the next make tries again
    stamp = project / ".venv" / ".installed"
    assert stamp.stat().st_mtime < (project / "constraints.txt").stat().st_mtime
