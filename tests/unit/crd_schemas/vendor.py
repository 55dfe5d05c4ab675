"""Vendor the operators' published CRD schemas, cut down to what Kaowu's manifests use.

    python tests/unit/crd_schemas/vendor.py PATH/TO/CRDs-catalog [COMMIT]

Source: https://github.com/datreeio/CRDs-catalog (one JSON Schema per kind and version,
extracted from the operators' released CRDs: <group>/<kind>_<version>.json). Each schema is
kept as published along every path the rendered manifests (deploy/k8s/overlays/*) use; a
property they do not use keeps its name and its type but not its subtree, so the files
stay small (the RabbitmqCluster and CloudNativePG Cluster schemas are 400 kB each, most of
it pod templates we do not override). Using such a property later needs a refresh: run
this again (after ``git pull`` in the catalog), review the diff, commit.
tests/unit/test_k8s_manifests.py validates every custom resource against these, strictly
(an unknown field fails, as kubernetes-validate does for the core kinds).
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
OVERLAYS = ("dev", "prod")


def file_name(api_version: str, kind: str) -> str:
    group, version = api_version.split("/")
    return f"{group}_{kind.lower()}_{version}.json"


def prune(schema: dict, instances: list) -> dict:
    """``schema`` along the values ``instances`` hold; unused properties cut to their type."""
    out = dict(schema)
    objects = [i for i in instances if isinstance(i, dict)]
    if "properties" in schema:
        out["properties"] = {}
        for name, sub in schema["properties"].items():
            used = [o[name] for o in objects if name in o]
            out["properties"][name] = (prune(sub, used) if used else
                                       {k: sub[k] for k in ("type",) if k in sub})
    if isinstance(schema.get("additionalProperties"), dict):
        values = [v for o in objects for k, v in o.items()
                  if k not in schema.get("properties", {})]
        out["additionalProperties"] = prune(schema["additionalProperties"], values)
    if isinstance(schema.get("items"), dict):
        out["items"] = prune(schema["items"], [e for i in instances if isinstance(i, list)
                                                 for e in i])
    out.pop("description", None)  # the published text stays upstream: only the rules here
    return out


def main(catalog: str, commit: str = ""):
    docs = []
    for overlay in OVERLAYS:
        rendered = subprocess.run(["kubectl", "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay)],
                                  check=True, capture_output=True, text=True).stdout
        docs += [d for d in yaml.safe_load_all(rendered) if d]
    from test_k8s_manifests import CUSTOM  # noqa: E402 (run from this directory's parent)

    for api_version, kinds in CUSTOM.items():
        group, version = api_version.split("/")
        for kind in sorted(kinds):
            published = json.loads((Path(catalog) / group / f"{kind.lower()}_{version}.json")
                                   .read_text("utf-8"))
            instances = [d for d in docs if d["apiVersion"] == api_version and d["kind"] == kind]
            pruned = prune(published, instances)
            pruned["$comment"] = (f"datreeio/CRDs-catalog{'@' + commit if commit else ''} "
                                  f"{group}/{kind.lower()}_{version}.json, cut down to what "
                                  "deploy/k8s uses by tests/unit/crd_schemas/vendor.py")
            (HERE / file_name(api_version, kind)).write_text(
                json.dumps(pruned, indent=1, sort_keys=True) + "\n", "utf-8")
            print(f"{kind} {api_version}: {len(instances)} in the manifests")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main(*sys.argv[1:3])
