"""deploy/k8s, checked offline: both overlays render with ``kubectl kustomize``, every core
resource validates against the Kubernetes schemas of a pinned version (kubernetes-validate,
strict: unknown fields fail), and the manifests agree with the code: one Deployment per
service package, probe and metrics ports equal to what the services listen on, secrets
referenced and never committed, the network policies the design asks for, alerts on
metrics that exist, a Dockerfile that builds what the manifests run.
"""

import ast
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import parse_address

from shared.metrics import DEAD_LETTERS, EXPORTED
from shared.migrate import service_class
from shared.runner import discover_services
from shared.service import EventSourcedService

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # nameko.cli imports pkg_resources
    from nameko.cli.main import setup_yaml_parser

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MONITORING = ROOT / "deploy" / "monitoring"
KUBERNETES_VERSION = "1.32.0"  # the cluster version the manifests target
OVERLAYS = ("dev", "prod")

# the services of the design (DESIGN.md §2): their Deployments may exist before the code
PLANNED = {"account", "registration", "verification", "admission", "scoring", "certificate",
           "gateway"}

# custom resources: not in the Kubernetes schemas; their operators' API versions
CUSTOM = {
    "rabbitmq.com/v1beta1": {"RabbitmqCluster", "Vhost", "User", "Permission", "Policy",
                             "Exchange", "Queue", "Binding"},
    "postgresql.cnpg.io/v1": {"Cluster", "Database"},
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
}


def kustomize(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return request.param, kustomize(K8S / "overlays" / request.param)


@pytest.fixture(scope="module")
def prod():
    return kustomize(K8S / "overlays" / "prod")


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(doc):
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def service_of(deployment) -> str:
    return deployment["metadata"]["labels"]["app.kubernetes.io/name"]


def env_of(container) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def env_configmap(docs) -> dict:
    return next(d for d in of_kind(docs, "ConfigMap")
                if d["metadata"]["name"].startswith("kaowu-env"))["data"]


# -- rendering and schemas -------------------------------------------------------------------

def test_overlay_renders_and_every_core_resource_validates(rendered):
    overlay, docs = rendered
    seen_custom = set()
    errors = []
    for doc in docs:
        api, kind = doc["apiVersion"], doc["kind"]
        group = api.split("/")[0] if "/" in api else ""
        if any(group == g.split("/")[0] for g in CUSTOM):
            assert kind in CUSTOM.get(api, set()), f"{kind} with unexpected apiVersion {api}"
            seen_custom.add((api, kind))
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{kind}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: "
                          f"{e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{kind} {api}: not a Kubernetes {KUBERNETES_VERSION} kind")
    assert not errors, "\n".join(errors)
    assert seen_custom == {(api, k) for api, kinds in CUSTOM.items() for k in kinds}
    assert of_kind(docs, "Secret") == [], "Secrets are created out of band, never committed"
    text = yaml.safe_dump_all(docs)
    for placeholder in ("SERVICE_MODULE", "kaowu-db-SERVICE", "value: SERVICE\n"):
        assert placeholder not in text, f"the template's {placeholder!r} was not replaced"
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert namespaces == {"kaowu-dev" if overlay == "dev" else "kaowu"}


def test_the_validator_does_catch_mistakes():
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
              "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicas": "two",
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    typo = json.loads(json.dumps(broken))
    typo["spec"]["replicas"] = 2
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)


# -- one Deployment per service ---------------------------------------------------------------

def test_every_service_package_has_a_deployment_running_it(rendered):
    _, docs = rendered
    deployments = {service_of(d): d for d in of_kind(docs, "Deployment")}
    for name in discover_services():
        assert name in deployments, f"services/{name}/service.py has no Deployment in deploy/k8s"
        container = pod_spec(deployments[name])["containers"][0]
        cls = service_class(name)
        assert container["args"] == [f"services.{name}.service:{cls.__name__}"]
        assert issubclass(cls, EventSourcedService)  # it serves the probes and /metrics
        assert env_of(container)["SERVICE_NAME"]["value"] == name
    assert set(deployments) <= PLANNED | set(discover_services())
    for name, d in deployments.items():
        assert d["metadata"]["name"] == f"kaowu-{name}"
        assert "replicas" not in d["spec"], "the HPA owns the replica count"


def test_each_deployment_has_service_hpa_pdb_and_jobs(rendered):
    _, docs = rendered
    for d in of_kind(docs, "Deployment"):
        name = service_of(d)
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        svc = named(docs, "Service", f"kaowu-{name}")
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http",
                                         "protocol": "TCP"}]
        hpa = named(docs, "HorizontalPodAutoscaler", f"kaowu-{name}")
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": d["metadata"]["name"]}
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        pdb = named(docs, "PodDisruptionBudget", f"kaowu-{name}")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1
        # every pod of another Deployment stays out of this one's Service and PDB
        for other in of_kind(docs, "Deployment"):
            if other is not d:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not svc["spec"]["selector"].items() <= other_labels.items()

        job = named(docs, "Job", f"kaowu-migrate-{name}")
        migrate = pod_spec(job)["containers"][0]
        assert migrate["command"][:3] == ["python", "-m", "shared.migrate"]
        assert migrate["command"][-1] == "$(SERVICE_NAME)"
        assert env_of(migrate)["SERVICE_NAME"]["value"] == name
        assert job["spec"]["ttlSecondsAfterFinished"] > 0
        cron = named(docs, "CronJob", f"kaowu-rebuild-{name}")
        assert cron["spec"]["suspend"] is True, "the rebuild runs only when an operator asks"
        rebuild = pod_spec(cron)["containers"][0]
        assert rebuild["command"] == ["python", "-m", "shared.rebuild", "$(SERVICE_NAME)"]
        assert env_of(rebuild)["SERVICE_NAME"]["value"] == name
        for c in (pod_spec(d)["containers"][0], migrate, rebuild):
            assert c["image"] == pod_spec(d)["containers"][0]["image"]  # one image


# -- ports, probes, shutdown ------------------------------------------------------------------

def nameko_config(path: Path, env: dict, monkeypatch) -> dict:
    """A nameko config file as ``nameko run`` loads it, with ``env`` in the environment."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    setup_yaml_parser()
    return yaml.safe_load(path.read_text("utf-8"))


def test_probes_and_metrics_ports_match_what_the_service_listens_on(rendered, monkeypatch):
    _, docs = rendered
    env = env_configmap(docs)
    configured = nameko_config(K8S / "base" / "nameko-config.yml", env, monkeypatch)
    listen_port = parse_address(configured["WEB_SERVER_ADDRESS"]).port
    routes = {h.url for _, m in vars(EventSourcedService).items() if callable(m)
              for h in getattr(m, "nameko_entrypoints", ()) if isinstance(h, HttpRequestHandler)}
    assert routes == {"/health/live", "/health/ready", "/metrics"}
    for d in of_kind(docs, "Deployment"):
        spec = pod_spec(d)
        (container,) = spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": listen_port}
        for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                            ("readinessProbe", "/health/ready")):
            get = container[probe]["httpGet"]
            assert get["path"] == path and get["path"] in routes
            port = ports.get(get["port"], get["port"])
            assert port == listen_port, f"{d['metadata']['name']} {probe} port {get['port']}"
        # the mounted config is the one nameko reads
        mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
        assert mount["mountPath"] == "/app/config.yml"
    sm = of_kind(docs, "ServiceMonitor")[0]
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["path"] in routes
    for svc in of_kind(docs, "Service"):
        assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
        assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()


def test_graceful_shutdown_outlasts_the_prestop_sleep(rendered):
    _, docs = rendered
    for d in of_kind(docs, "Deployment"):
        spec = pod_spec(d)
        sleep = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep"
        assert spec["terminationGracePeriodSeconds"] >= int(sleep[1]) + 30


def test_pods_run_non_root_read_only(rendered):
    _, docs = rendered
    for d in of_kind(docs, "Deployment") + of_kind(docs, "Job") + of_kind(docs, "CronJob"):
        spec = pod_spec(d)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_k8s_nameko_config_keeps_step_with_the_repository_config():
    setup_yaml_parser()
    ours = yaml.safe_load((ROOT / "config.yml").read_text("utf-8"))
    theirs = yaml.safe_load((K8S / "base" / "nameko-config.yml").read_text("utf-8"))
    missing = set(ours) - set(theirs)
    assert not missing, f"add {sorted(missing)} to deploy/k8s/base/nameko-config.yml"


# -- secrets --------------------------------------------------------------------------------

def secret_refs(doc) -> set[str]:
    refs = set()
    spec = pod_spec(doc)
    for c in spec["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add(ref["name"])
    for v in spec.get("volumes", []):
        if "secret" in v:
            refs.add(v["secret"]["secretName"])
    return refs


def test_secrets_are_referenced_each_service_its_own_database_secret(rendered):
    _, docs = rendered
    for d in of_kind(docs, "Deployment") + of_kind(docs, "Job") + of_kind(docs, "CronJob"):
        name = d["metadata"]["labels"]["app.kubernetes.io/name"]
        refs = secret_refs(d)
        db = {r for r in refs if r.startswith("kaowu-db-")}
        assert db == {f"kaowu-db-{name}"}, f"{d['kind']}/{d['metadata']['name']} uses {db}"
        allowed = {f"kaowu-db-{name}"}
        if d["kind"] == "Deployment":
            allowed.add("kaowu-amqp")
            if name == "certificate":
                allowed.add("kaowu-certificate-signing-key")
        assert refs <= allowed, refs - allowed
    cert = named(docs, "Deployment", "kaowu-certificate")
    assert "kaowu-certificate-signing-key" in secret_refs(cert)
    assert "CERTIFICATE_SIGNING_KEY_FILE" in env_of(pod_spec(cert)["containers"][0])
    (ingress,) = of_kind(docs, "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"] == "kaowu-tls"
    readme = (K8S / "README.md").read_text("utf-8")
    for secret in ("kaowu-db-", "kaowu-amqp", "kaowu-certificate-signing-key", "kaowu-tls"):
        assert secret in readme, f"README.md does not say how to create {secret}"


def test_no_credentials_in_the_repository_manifests():
    suspicious = re.compile(r"(password|secret|token)\s*[:=]\s*['\"]?[A-Za-z0-9+/]{8,}", re.I)
    for path in [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml"), *MONITORING.rglob("*.yaml")]:
        for line in path.read_text("utf-8").splitlines():
            if suspicious.search(line) and "secretKeyRef" not in line:
                pytest.fail(f"{path}: looks like a credential: {line.strip()}")


# -- broker and databases -------------------------------------------------------------------

def test_rabbitmq_three_nodes_and_quorum_queues(prod):
    (cluster,) = of_kind(prod, "RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3
    vhost = next(v for v in of_kind(prod, "Vhost") if v["spec"]["name"] == "kaowu")
    assert vhost["spec"]["defaultQueueType"] == "quorum"
    env = env_configmap(prod)
    assert env["AMQP_VHOST"] == "kaowu" and env["AMQP_HOST"] == cluster["metadata"]["name"]
    for kind in ("User", "Permission", "Policy", "Exchange", "Queue", "Binding"):
        for d in of_kind(prod, kind):
            assert d["spec"]["rabbitmqClusterReference"]["name"] == cluster["metadata"]["name"]
    (user,) = of_kind(prod, "User")
    assert user["spec"]["importCredentialsSecret"]["name"] == "kaowu-amqp"


def test_postgres_one_database_and_role_per_service(prod):
    (cluster,) = of_kind(prod, "Cluster")
    assert cluster["spec"]["instances"] == 3
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d for d in of_kind(prod, "Database")}
    hba = cluster["spec"]["postgresql"]["pg_hba"]
    env = env_configmap(prod)
    assert env["DB_HOST"] == f"{cluster['metadata']['name']}-rw"
    for d in of_kind(prod, "Deployment"):
        name = service_of(d)
        assert roles[name]["passwordSecret"]["name"] == f"kaowu-db-{name}"
        db = databases[f"kaowu_{name}"]
        assert db["spec"]["owner"] == name
        assert db["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        allow = f"host kaowu_{name} {name} all scram-sha-256"
        reject = f"host kaowu_{name} all all reject"
        assert hba.index(allow) < hba.index(reject)
        url = env_of(pod_spec(d)["containers"][0])["DATABASE_URL"]["value"]
        assert url.endswith("/kaowu_$(SERVICE_NAME)")


# -- network policies -----------------------------------------------------------------------

def selects(policy, labels: dict) -> bool:
    sel = policy["spec"]["podSelector"]
    assert "matchExpressions" not in sel
    return sel.get("matchLabels", {}).items() <= labels.items()


def test_network_policies(rendered):
    _, docs = rendered
    policies = of_kind(docs, "NetworkPolicy")
    pods = {service_of(d): d["spec"]["template"]["metadata"]["labels"]
            for d in of_kind(docs, "Deployment")}
    jobs = [pod_spec_labels for pod_spec_labels in
            (j["spec"]["template"]["metadata"]["labels"] for j in of_kind(docs, "Job"))]

    # everything Kaowu runs is denied by default, both ways
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}]
    assert deny
    for labels in [*pods.values(), *jobs]:
        assert any(selects(p, labels) for p in deny)

    def rules(labels, direction):
        return [r for p in policies if selects(p, labels) and direction.capitalize()
                in p["spec"]["policyTypes"] for r in p["spec"].get(direction, [])]

    for name, labels in pods.items():
        # in: Prometheus everywhere; the ingress controller only to the gateway
        sources = []
        for r in rules(labels, "ingress"):
            assert r.get("from"), "an ingress rule without `from` lets everyone in"
            for peer in r["from"]:
                ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
                sources.append(ns.get("kubernetes.io/metadata.name"))
            assert [p.get("port") for p in r["ports"]] == ["http"]
        expected = {"monitoring", "ingress-nginx"} if name == "gateway" else {"monitoring"}
        assert set(sources) == expected, f"{name} is reachable from {sources}"
        # out: RabbitMQ, PostgreSQL, DNS, nothing else
        allowed = set()
        for r in rules(labels, "egress"):
            assert r.get("to") and r.get("ports"), "an egress rule without `to` or ports"
            for peer in r["to"]:
                pod = peer.get("podSelector", {}).get("matchLabels", {})
                target = (pod.get("app.kubernetes.io/name") or pod.get("cnpg.io/cluster")
                          or pod.get("k8s-app"))
                allowed |= {(target, p["port"]) for p in r["ports"]}
        assert allowed == {("kaowu-rabbitmq", 5672), ("kaowu-pg", 5432), ("kube-dns", 53)}

    # the data stores take their protocols only from Kaowu's pods (and their own kin)
    rabbit = next(p for p in policies if p["spec"]["podSelector"]["matchLabels"]
                  == {"app.kubernetes.io/name": "kaowu-rabbitmq"})
    amqp = [r for r in rabbit["spec"]["ingress"] if {"protocol": "TCP", "port": 5672} in r.get("ports", [])]
    assert amqp and all(peer["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"] == "kaowu"
                        for r in amqp for peer in r["from"])
    pg = next(p for p in policies if p["spec"]["podSelector"]["matchLabels"]
              == {"cnpg.io/cluster": "kaowu-pg"})
    assert all(r.get("from") for r in pg["spec"]["ingress"])
    (ingress,) = of_kind(docs, "Ingress")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [("/api", "kaowu-gateway")]


# -- monitoring -----------------------------------------------------------------------------

def metric_names(expr: str) -> set[str]:
    names = set()
    for m in re.findall(r"\bkaowu_[a-z_]+\b", expr):
        for suffix in ("_bucket", "_count", "_sum", "_total"):
            if m.endswith(suffix) and m[: -len(suffix)] in EXPORTED:
                m = m[: -len(suffix)]
        names.add(m)
    return names


def test_alert_rules_watch_real_metrics(prod):
    (rule,) = of_kind(prod, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for needed in ("KaowuServiceDown", "KaowuRelayLagGrowing", "KaowuConsumerLagGrowing",
                   "KaowuDeadLetters"):
        assert needed in alerts
    assert "kaowu_relay_lag_events" in alerts["KaowuRelayLagGrowing"]["expr"]
    assert "kaowu_consumer_lag_events" in alerts["KaowuConsumerLagGrowing"]["expr"]
    assert DEAD_LETTERS in alerts["KaowuDeadLetters"]["expr"]
    assert 'up{job="kaowu"}' in alerts["KaowuServiceDown"]["expr"]
    for name, r in alerts.items():
        unknown = metric_names(r["expr"]) - set(EXPORTED) - {DEAD_LETTERS}
        assert not unknown, f"{name} uses metrics nobody exports: {unknown}"
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert r["annotations"]["summary"]


def test_grafana_dashboard(prod):
    dashboard = json.loads((MONITORING / "grafana" / "kaowu-overview.json").read_text("utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and dashboard["uid"] == "kaowu-overview"
    used = set().union(*(metric_names(e) for e in exprs))
    assert used - set(EXPORTED) - {DEAD_LETTERS} == set()
    for must in ("kaowu_relay_lag_events", "kaowu_consumer_lag_events",
                 "kaowu_entrypoint_duration_seconds", "kaowu_events_appended",
                 "kaowu_business_count"):
        assert must in used
    cm = named(prod, "ConfigMap", "kaowu-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["kaowu-overview.json"]) == dashboard


# -- the image ------------------------------------------------------------------------------

def dockerfile_stages():
    stages, current = [], None
    for raw in (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            current = {"from": rest.split()[0], "lines": []}
            stages.append(current)
        else:
            current["lines"].append((instruction, rest.strip()))
    return stages


def test_dockerfile(prod):
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a builder and a slim runtime"
    builder, runtime = stages[0], stages[-1]
    runs = " ".join(rest for ins, rest in builder["lines"] if ins == "RUN")
    assert "-c constraints.txt" in runs, "installs pinned by constraints.txt"
    assert runtime["from"].startswith("python:3.11-slim")
    users = [rest for ins, rest in runtime["lines"] if ins == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    expose = {int(rest.split("/")[0]) for ins, rest in runtime["lines"] if ins == "EXPOSE"}
    ports = {p["containerPort"] for d in of_kind(prod, "Deployment")
             for p in pod_spec(d)["containers"][0]["ports"]}
    assert expose == ports
    uid = int(users[-1].split(":")[0])
    assert {pod_spec(d)["securityContext"]["runAsUser"] for d in of_kind(prod, "Deployment")} == {uid}

    entrypoint = json.loads(next(rest for ins, rest in runtime["lines"] if ins == "ENTRYPOINT"))
    assert entrypoint == ["nameko", "run", "--config", "/app/config.yml"]
    (cmd,) = json.loads(next(rest for ins, rest in runtime["lines"] if ins == "CMD"))
    module, _, cls = cmd.partition(":")
    assert module.startswith("services.") and service_class(module.split(".")[1]).__name__ == cls

    # what the image copies exists and is not kept out of the build by .dockerignore
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    sources = [src for stage in stages for ins, rest in stage["lines"]
               if ins == "COPY" and "--from" not in rest
               for src in rest.split()[:-1] if not src.startswith("--")]
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not any(src == pat or src.startswith(pat.rstrip("/") + "/") for pat in ignored), src
    # the files services read at run time are in the image
    for needed in ("pyproject.toml", "constraints.txt", "config.yml", "shared", "services",
                   "deploy/sessions", "deploy/reference"):
        assert needed in sources, f"the image lacks {needed}"


# -- the Jobs' commands are real --------------------------------------------------------------

def test_migrate_and_rebuild_commands_run(tmp_path, monkeypatch, capsys):
    from shared import migrate, rebuild

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/{{service}}.db")
    assert migrate.main(["--all"]) == 0
    out = capsys.readouterr().out
    for name in discover_services():
        assert f"{name}: migrating" in out and (tmp_path / f"{name}.db").exists()
    assert migrate.main(["account"]) == 0
    assert "0 applied" in capsys.readouterr().out  # idempotent
    assert rebuild.main(["verification"]) == 0
    assert "verification/verification: rebuilt from 0 events" in capsys.readouterr().out
    assert rebuild.main(["verification", "--projection", "nope"]) == 1
    with pytest.raises(SystemExit):
        migrate.main(["no_such_service"])


def test_service_class_is_found_without_running_anything():
    for name in discover_services():
        cls = service_class(name)
        tree = ast.parse((ROOT / "services" / name / "service.py").read_text("utf-8"))
        assert cls.__name__ in {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
