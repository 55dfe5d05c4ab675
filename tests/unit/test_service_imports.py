"""The service image holds what the services need and nothing only the command line or the
tests need (pyproject: the dependencies, the `cli` and `dev` extras; the Dockerfile's
`runtime` target installs the dependencies only). So: every module of ``services`` and
``shared`` (the runner and the migration and rebuild commands among them) imports, and the
migration Job's command runs, in a fresh interpreter that refuses to import anything only
the extras bring (and the cli, tests, bench and faults packages, which the image does not
copy). A service that grows a CLI or test dependency fails here, not in the cluster.
"""

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_IMAGE = {"cli", "tests", "bench", "faults"}  # packages the image does not copy


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements) -> set[str]:
    """The distributions ``requirements`` pull in (as installed here: constraints.txt's)."""
    todo, seen = [Requirement(r) for r in requirements], set()
    while todo:
        req = todo.pop()
        extras = req.extras or {""}
        if _norm(req.name) == "kaowu" or (req.marker and not any(
                req.marker.evaluate({"extra": e}) for e in extras)):
            continue
        key = _norm(req.name) + "".join(f"[{e}]" for e in sorted(req.extras))
        if key in seen:
            continue
        seen.add(key)
        for r in distribution(req.name).requires or ():
            sub = Requirement(r)
            if not sub.marker or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {k.split("[")[0] for k in seen}


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]


def image_distributions() -> set[str]:
    return closure(_project()["dependencies"])


def extra_only_modules() -> set[str]:
    """Top-level modules of the distributions only the extras (cli, dev) bring."""
    project = _project()
    extras = closure(r for reqs in project["optional-dependencies"].values() for r in reqs)
    only = extras - image_distributions()
    return {module for module, dists in packages_distributions().items()
            if module.isidentifier() and all(_norm(d) in only for d in dists)}


def test_the_extras_bring_what_only_the_cli_and_the_tests_use():
    blocked = extra_only_modules()
    assert {"typer", "rich", "pytest", "hypothesis", "schemathesis", "selenium"} <= blocked
    # and nothing the services import
    assert not blocked & {"nameko", "marshmallow", "sqlalchemy", "yaml", "requests"}


SCRIPT = r"""
import importlib, importlib.abc, json, pkgutil, sys, tempfile, os

BLOCKED = set(json.loads(sys.argv[1]))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the service image (only the cli or dev extra "
                              "installs it)")
        return None

sys.meta_path.insert(0, Refuse())
import warnings
warnings.simplefilter("ignore")
import eventlet
eventlet.monkey_patch()
imported = []
for package in ("shared", "services"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
for module in ("shared.runner", "shared.migrate", "shared.rebuild"):
    importlib.import_module(module)
# what the Kubernetes migration Job runs (python -m shared.migrate SERVICE), every service
from shared import migrate
from shared.runner import discover_services
with tempfile.TemporaryDirectory() as tmp:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/{{service}}.db"
    def has_database(name):
        try:
            migrate.store_provider(name)
        except LookupError:
            return False
        return True
    names = sorted(n for n in discover_services() if has_database(n))
    assert len(names) >= 6, names
    assert migrate.main(names) == 0
print(json.dumps(imported))
"""


def test_every_service_module_imports_without_the_cli_and_test_packages():
    blocked = extra_only_modules() | NOT_IN_IMAGE
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(sorted(blocked))],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
    for name in ("services.gateway.service", "services.account.service", "shared.runner",
                 "shared.migrate", "services.notification.gateway"):
        assert name in imported


def test_the_refusal_does_refuse():
    """The same interpreter set-up fails on a module that imports the command line's
    libraries: the test above is not blind."""
    script = SCRIPT.split("import warnings")[0] + "import typer\n"
    out = subprocess.run([sys.executable, "-c", script, json.dumps(["typer"])], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "not in the service image" in out.stderr
