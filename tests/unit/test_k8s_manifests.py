"""deploy/k8s, checked offline: both overlays render with ``kubectl kustomize``, every core
resource validates against the Kubernetes schemas of a pinned version (kubernetes-validate,
strict: unknown fields fail), every custom resource against its operator's published CRD
schema (vendored, cut down: tests/unit/crd_schemas/; strict too), and the manifests agree with the code: one Deployment per
service package, probe and metrics ports equal to what the services listen on, a database,
its migration and rebuild Jobs for each service that keeps an event log (not the gateway),
secrets referenced, never committed, and reaching the code that reads them as a pod would
pass them, the network policies the design asks for, alerts on metrics that exist (the
dead letters among them), a Dockerfile that builds what the manifests run.
"""

import ast
import base64
import functools
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import parse_address

from shared import deadletter
from shared.metrics import DEAD_LETTERS, EXPORTED, PROCESS
from shared.migrate import service_class, store_provider
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
PROBES = {"/health/live", "/health/ready", "/metrics"}  # in-cluster only, never via Ingress

# custom resources: not in the Kubernetes schemas; their operators' API versions, each
# validated against the operator's CRD schema in crd_schemas/ (vendor.py says whence)
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"
CUSTOM = {
    "rabbitmq.com/v1beta1": {"RabbitmqCluster", "Vhost", "User", "Permission", "Policy",
                             "Exchange", "Queue", "Binding"},
    "postgresql.cnpg.io/v1": {"Cluster", "Database"},
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
}

# configuration that comes from Secrets the operators create (deploy/k8s/README.md), per
# service: {secret: {key: environment variable}}. The database and broker Secrets
# (kaowu-db-<name>, kaowu-amqp) are checked apart.
SECRETS = {
    "account": {"kaowu-password-reset-key": {"reset-key": "PASSWORD_RESET_KEY"}},
    "admission": {"kaowu-admission-qr-key": {"qr-key": "ADMISSION_QR_KEY"}},
    "certificate": {"kaowu-certificate-signing-key": {"private-key.pem": "CERTIFICATE_SIGNING_KEY"}},
    "gateway": {"kaowu-gateway-token-key": {"token-key": "GATEWAY_TOKEN_KEY"}},
    "notification": {"kaowu-notification-sms": {"url": "SMS_PROVIDER_URL",
                                                "token": "SMS_PROVIDER_TOKEN"},
                     "kaowu-password-reset-key": {"reset-key": "PASSWORD_RESET_KEY"}},
}
# the development overlay sends no SMS (the notification service's local sink)
NOT_IN_DEV = {"kaowu-notification-sms"}


def has_database(name: str) -> bool:
    """Does the service keep an event log (an EventStoreProvider), hence a database?"""
    try:
        store_provider(name)
    except LookupError:
        return False
    return True


def http_routes(cls) -> set[str]:
    """The URLs of a service class's nameko ``@http`` entrypoints (its own and inherited)."""
    return {ep.url for klass in cls.__mro__ for member in vars(klass).values()
            for ep in getattr(member, "nameko_entrypoints", ())
            if isinstance(ep, HttpRequestHandler)}


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


def env_configmap_name(docs) -> str:
    return next(d for d in of_kind(docs, "ConfigMap")
                if d["metadata"]["name"].startswith("kaowu-env"))["metadata"]["name"]


def database_services() -> set[str]:
    return {name for name in discover_services() if has_database(name)}


_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def pod_env(doc, docs, secrets: dict) -> dict:
    """The environment a pod of ``doc`` starts with, as the kubelet makes it: the envFrom
    ConfigMaps, then ``env`` in order, a ``$(VAR)`` expanded only if VAR came before, a
    secretKeyRef read from ``secrets`` ({name: {key: value}}; KeyError if missing, as a
    pod with a required reference to a missing Secret does not start)."""
    (container,) = pod_spec(doc)["containers"]
    env = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update(named(docs, "ConfigMap", name)["data"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = _REF.sub(lambda m: env.get(m.group(1), m.group(0)), e["value"])
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
    return env


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
            errors += [f"{kind}/{doc['metadata']['name']}: {'.'.join(map(str, e.path))}: "
                       f"{e.message}" for e in crd_validator(api, kind).iter_errors(doc)]
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


def strict(schema):
    """A CRD schema where an unknown field fails (as kubernetes-validate's strict mode for
    the core kinds; the API server would drop it silently): every object schema that lists
    its properties and says nothing of others gets ``additionalProperties: false``."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k == "enum" else
               {n: strict(sub) for n, sub in v.items()} if k == "properties" else strict(v))
           for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(api_version: str, kind: str):
    import jsonschema

    group, version = api_version.split("/")
    path = CRD_SCHEMAS / f"{group}_{kind.lower()}_{version}.json"
    assert path.is_file(), f"no CRD schema for {kind} {api_version}: run crd_schemas/vendor.py"
    schema = strict(json.loads(path.read_text("utf-8")))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


def test_every_custom_kind_has_its_schema_and_it_catches_mistakes(prod):
    assert {p.name for p in CRD_SCHEMAS.glob("*.json")} == {
        f"{api.split('/')[0]}_{k.lower()}_{api.split('/')[1]}.json"
        for api, kinds in CUSTOM.items() for k in kinds}
    for api, kind in (("rabbitmq.com/v1beta1", "RabbitmqCluster"),
                      ("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "Database"),
                      ("monitoring.coreos.com/v1", "ServiceMonitor"),
                      ("monitoring.coreos.com/v1", "PrometheusRule")):
        (doc, *_) = [d for d in prod if d["apiVersion"] == api and d["kind"] == kind]
        assert not list(crd_validator(api, kind).iter_errors(doc))
        typo = json.loads(json.dumps(doc))
        typo["spec"]["replicaz"] = 3  # an unknown field
        assert list(crd_validator(api, kind).iter_errors(typo)), f"{kind} takes a typo"
    (cluster,) = of_kind(prod, "RabbitmqCluster")
    wrong = json.loads(json.dumps(cluster))
    wrong["spec"]["replicas"] = "three"  # a wrong type
    assert list(crd_validator("rabbitmq.com/v1beta1", "RabbitmqCluster").iter_errors(wrong))
    (rule,) = of_kind(prod, "PrometheusRule")
    wrong = json.loads(json.dumps(rule))
    del wrong["spec"]["groups"][0]["rules"][0]["expr"]  # a required field
    assert list(crd_validator("monitoring.coreos.com/v1", "PrometheusRule").iter_errors(wrong))


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
    assert set(deployments) == set(discover_services()), \
        "one Deployment per services/<name>/service.py, and none for anything else"
    for name, d in deployments.items():
        container = pod_spec(d)["containers"][0]
        cls = service_class(name)  # the class named in the args is the one in the code
        assert container["args"] == [f"services.{name}.service:{cls.__name__}"]
        assert http_routes(cls) >= PROBES, f"{cls.__name__} lacks {PROBES - http_routes(cls)}"
        assert env_of(container)["SERVICE_NAME"]["value"] == name
        assert d["metadata"]["name"] == f"kaowu-{name}"
        assert "replicas" not in d["spec"], "the HPA owns the replica count"
    # today's services are all there (the discovery above would miss a deleted package)
    assert {"account", "registration", "verification", "admission", "scoring", "certificate",
            "notification", "gateway"} <= set(deployments)


def test_services_with_a_database_and_the_gateway_without(rendered):
    _, docs = rendered
    assert "gateway" not in database_services()
    assert issubclass(service_class("notification"), EventSourcedService)
    for d in of_kind(docs, "Deployment"):
        name = service_of(d)
        env = env_of(pod_spec(d)["containers"][0])
        jobs = [j for j in of_kind(docs, "Job") + of_kind(docs, "CronJob")
                if j["metadata"]["labels"]["app.kubernetes.io/name"] == name]
        if has_database(name):
            assert "DATABASE_URL" in env and len(jobs) == 2
            assert d["spec"]["template"]["metadata"]["labels"]["kaowu/database"] == "true"
        else:  # the gateway keeps no log: a Job migrating nothing would fail every deploy
            assert "DATABASE_URL" not in env and jobs == []
            assert "kaowu/database" not in d["spec"]["template"]["metadata"]["labels"]


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
        if not has_database(name):
            continue

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


def test_env_references_come_after_what_they_refer_to(rendered):
    """Kubernetes expands ``$(VAR)`` in an env value only if VAR is defined earlier in the
    list (or by envFrom); otherwise the text stays as it is: a database URL with
    ``$(SERVICE_NAME)`` in it."""
    _, docs = rendered
    cm = set(env_configmap(docs))
    for d in of_kind(docs, "Deployment") + of_kind(docs, "Job") + of_kind(docs, "CronJob"):
        for c in pod_spec(d)["containers"]:
            defined = set(cm)
            for e in c.get("env", []):
                for ref in _REF.findall(e.get("value", "")):
                    assert ref in defined, (f"{d['metadata']['name']}: {e['name']} uses "
                                            f"$({ref}) before it is defined")
                defined.add(e["name"])
            for ref in _REF.findall(" ".join(c.get("command", []) + c.get("args", []))):
                assert ref in defined


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
    assert http_routes(EventSourcedService) == PROBES
    for d in of_kind(docs, "Deployment"):
        routes = http_routes(service_class(service_of(d)))  # the gateway: its own routes
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
    sm = named(docs, "ServiceMonitor", "kaowu")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["path"] in PROBES
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


def secret_keys(doc) -> dict:
    """{(secret, key): the secretKeyRef} of a pod's env."""
    return {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]):
            {**e["valueFrom"]["secretKeyRef"], "env": e["name"]}
            for c in pod_spec(doc)["containers"] for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def expected_secrets(overlay: str, name: str) -> dict:
    return {secret: keys for secret, keys in SECRETS.get(name, {}).items()
            if not (overlay == "dev" and secret in NOT_IN_DEV)}


def test_secrets_are_referenced_each_service_its_own(rendered):
    overlay, docs = rendered
    for d in of_kind(docs, "Deployment") + of_kind(docs, "Job") + of_kind(docs, "CronJob"):
        name = d["metadata"]["labels"]["app.kubernetes.io/name"]
        refs = secret_refs(d)
        db = {r for r in refs if r.startswith("kaowu-db-")}
        assert db == ({f"kaowu-db-{name}"} if has_database(name) else set()), \
            f"{d['kind']}/{d['metadata']['name']} uses {db}"
        allowed = set(db)
        if d["kind"] == "Deployment":
            own = expected_secrets(overlay, name)
            allowed |= {"kaowu-amqp", *own}
            assert "kaowu-amqp" in refs
            # each setting from its Secret, required: a missing Secret keeps the pod from
            # starting instead of letting it run on a development default
            keys = secret_keys(d)
            for secret, wanted in own.items():
                for key, variable in wanted.items():
                    ref = keys.get((secret, key))
                    assert ref and ref["env"] == variable, f"{name}: {variable} from {secret}/{key}"
                    assert ref.get("optional") is False, f"{name}: {secret} must be required"
        assert refs <= allowed, refs - allowed
        for ref in secret_keys(d).values():
            assert ref.get("optional") is not True, f"{d['metadata']['name']}: {ref}"
    (ingress,) = of_kind(docs, "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"] == "kaowu-tls"

    # every Secret referenced is one README.md says how to create
    readme = (K8S / "README.md").read_text("utf-8")
    referenced = {r for d in of_kind(docs, "Deployment") + of_kind(docs, "Job")
                  + of_kind(docs, "CronJob") for r in secret_refs(d)}
    wanted = {"kaowu-amqp", "kaowu-db-account", *(s for own in SECRETS.values() for s in own)}
    assert wanted - (NOT_IN_DEV if overlay == "dev" else set()) <= referenced
    for secret in {re.sub(r"^kaowu-db-.*", "kaowu-db-", r) for r in referenced} | {"kaowu-tls"}:
        assert secret in readme, f"README.md does not say how to create {secret}"
    for secret, keys in (s for own in SECRETS.values() for s in own.items()):
        create = re.search(rf"create secret generic {re.escape(secret)}\b(.*?)(?:\n\n|\Z)",
                           readme, re.S)
        assert create, f"README.md: no `kubectl create secret generic {secret}`"
        for key in keys:
            assert re.search(rf"--from-(literal|file)={re.escape(key)}=", create.group(1)), \
                f"README.md: {secret} needs the key {key}"


def ed25519_pem() -> str:
    from joserfc.jwk import OKPKey

    return OKPKey.generate_key("Ed25519").as_pem(private=True).decode()


def fake_secrets(overlay: str) -> dict:
    """Made-up values for every Secret a pod may reference (created per test, never kept)."""
    secrets = {f"kaowu-db-{n}": {"username": n, "password": "dbpass"} for n in discover_services()}
    secrets["kaowu-amqp"] = {"username": "kaowu", "password": "amqppass"}
    secrets["kaowu-admission-qr-key"] = {"qr-key": "qr-" + "1" * 40}
    secrets["kaowu-certificate-signing-key"] = {"private-key.pem": ed25519_pem()}
    secrets["kaowu-gateway-token-key"] = {"token-key": "t" * 64}
    secrets["kaowu-password-reset-key"] = {"reset-key": "r" * 64}
    if overlay != "dev":
        secrets["kaowu-notification-sms"] = {"url": "https://sms.example.net/v1/send",
                                             "token": "sms-token-123"}
    return secrets


def pod_config(docs, name, secrets, monkeypatch) -> dict:
    """The nameko config a pod of ``name`` runs with, and its environment set (as the pod's)."""
    env = pod_env(named(docs, "Deployment", f"kaowu-{name}"), docs, secrets)
    return nameko_config(K8S / "base" / "nameko-config.yml", env, monkeypatch)


def test_secrets_reach_the_code_that_reads_them(rendered, monkeypatch, tmp_path):
    """Each secret setting, put into a pod as the manifests say, is what the service's own
    code reads: from the nameko config the pod mounts, else from its environment."""
    overlay, docs = rendered
    secrets = fake_secrets(overlay)
    for name in SECRETS:  # a pod missing a Secret it requires would not start at all
        pod_env(named(docs, "Deployment", f"kaowu-{name}"), docs, secrets)
    with pytest.raises(KeyError):
        pod_env(named(docs, "Deployment", "kaowu-gateway"), docs,
                {k: v for k, v in secrets.items() if k != "kaowu-gateway-token-key"})

    # admission: the QR key, from the nameko config (services/admission/service.py)
    from services.admission.service import TicketKey

    config = pod_config(docs, "admission", secrets, monkeypatch)
    ticket_key = TicketKey()
    ticket_key.container = SimpleNamespace(config=config)
    ticket_key.setup()
    assert ticket_key.key == secrets["kaowu-admission-qr-key"]["qr-key"].encode()

    # certificate: the signing key (PEM text in the variable), and the public URLs
    from services.certificate import keys

    config = pod_config(docs, "certificate", secrets, monkeypatch)
    monkeypatch.setenv("CERTIFICATE_DEV_KEY_PATH", str(tmp_path / "dev-key.pem"))
    issuer = keys.issuer_from_config(config)
    expected = keys.parse_key(secrets["kaowu-certificate-signing-key"]["private-key.pem"], "test")
    assert issuer.kid == expected.thumbprint()
    assert not (tmp_path / "dev-key.pem").exists(), "a development key was made"
    (ingress,) = of_kind(docs, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    assert issuer.base_url == f"https://{host}" and issuer.issuer_id == f"https://{host}/issuer"

    # gateway: the token key, the same on every replica (no random per-process key)
    from services.gateway.auth import Tokens
    from services.gateway.web import Gate

    pod_config(docs, "gateway", secrets, monkeypatch)
    gate = Gate()
    gate.container = SimpleNamespace(config={})
    gate.setup()
    assert gate.tokens.development is False
    from datetime import UTC, datetime

    now = datetime(2026, 4, 1, tzinfo=UTC)
    token, _ = gate.tokens.issue({"account_id": "a" * 32, "role": "operator"}, now)
    other_replica = Tokens.from_settings(secrets["kaowu-gateway-token-key"]["token-key"])
    assert other_replica.verify(token, now).account_id == "a" * 32

    # account and notification: the one password-reset key (codes derived under it); a
    # pod without it refuses to start rather than make a development key of its own
    from services.account.service import ResetKey
    from shared.dev_secrets import PASSWORD_RESET, KeyRequired, secret

    monkeypatch.setenv("KAOWU_DEV_SECRETS_DIR", str(tmp_path / "dev-secrets"))
    for name in ("account", "notification"):
        config = pod_config(docs, name, secrets, monkeypatch)
        assert secret(PASSWORD_RESET, config) == (b"r" * 64, True), name
        monkeypatch.delenv("PASSWORD_RESET_KEY")
        with pytest.raises(KeyRequired, match="kaowu-password-reset-key"):
            secret(PASSWORD_RESET, config)
    provider = ResetKey()
    provider.container = SimpleNamespace(config=config)
    with pytest.raises(KeyRequired):
        provider.setup()

    # every pod: no secret key falls back to a development one (kaowu-env requires them)
    config = pod_config(docs, "certificate", secrets, monkeypatch)
    monkeypatch.delenv("CERTIFICATE_SIGNING_KEY")
    with pytest.raises(keys.ConfigError, match="kaowu-certificate-signing-key"):
        keys.issuer_from_config({**config, "CERTIFICATE_SIGNING_KEY": None})
    assert not (tmp_path / "dev-key.pem").exists(), "a development key was made"
    for name, provider in (("admission", TicketKey()), ("gateway", Gate())):
        config = pod_config(docs, name, secrets, monkeypatch)
        for variable in (v for wanted in SECRETS[name].values() for v in wanted.values()):
            monkeypatch.delenv(variable)
        config = {**config, "ADMISSION_QR_KEY": ""}  # as the pod's config renders it unset
        provider.container = SimpleNamespace(config=config)
        with pytest.raises(KeyRequired, match=f"kaowu-{name}-"):
            provider.setup()
    assert not (tmp_path / "dev-secrets").exists(), "a development key was made"

    # notification: the provider's URL and token (prod), the local sink (dev)
    from services.notification.service import Sender

    config = pod_config(docs, "notification", secrets, monkeypatch)
    sender = Sender.from_config(config)
    if overlay == "dev":
        assert sender.gateway.kind == "sink"
        assert str(sender.gateway.path).startswith("/tmp/")  # the pod's writable emptyDir
    else:
        assert sender.gateway.kind == "http"
        assert sender.gateway.url == secrets["kaowu-notification-sms"]["url"]
        assert sender.gateway._token == secrets["kaowu-notification-sms"]["token"]


def test_each_service_connects_to_its_own_database_and_the_broker(rendered, monkeypatch):
    overlay, docs = rendered
    secrets = fake_secrets(overlay)
    for d in of_kind(docs, "Deployment") + of_kind(docs, "Job") + of_kind(docs, "CronJob"):
        name = d["metadata"]["labels"]["app.kubernetes.io/name"]
        env = pod_env(d, docs, secrets)
        if has_database(name):
            assert env["DATABASE_URL"] == (f"postgresql+psycopg2://{name}:dbpass@kaowu-pg-rw:5432/"
                                           f"kaowu_{name}")
        if d["kind"] == "Deployment":
            config = nameko_config(K8S / "base" / "nameko-config.yml", env, monkeypatch)
            assert config["AMQP_URI"] == "amqp://kaowu:amqppass@kaowu-rabbitmq:5672/kaowu"


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
    # a role and a database for each service with an event log, for nothing else
    assert set(roles) == database_services()
    assert set(databases) == {f"kaowu_{n}" for n in database_services()}
    for d in of_kind(prod, "Deployment"):
        name = service_of(d)
        if not has_database(name):
            assert not any(f"kaowu_{name} " in line for line in hba)
            continue
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


PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}


def egress_targets(rules) -> set:
    allowed = set()
    for r in rules:
        assert r.get("to") and r.get("ports"), "an egress rule without `to` or ports"
        for peer in r["to"]:
            if "ipBlock" in peer:
                target = peer["ipBlock"]["cidr"]
                if target == "0.0.0.0/0":  # the internet, never the cluster's private ranges
                    assert set(peer["ipBlock"]["except"]) >= PRIVATE_RANGES
            else:
                pod = peer.get("podSelector", {}).get("matchLabels", {})
                target = (pod.get("app.kubernetes.io/name") or pod.get("cnpg.io/cluster")
                          or pod.get("k8s-app"))
            allowed |= {(target, p["port"]) for p in r["ports"]}
    return allowed


def test_network_policies(rendered):
    _, docs = rendered
    policies = of_kind(docs, "NetworkPolicy")
    pods = {service_of(d): d["spec"]["template"]["metadata"]["labels"]
            for d in of_kind(docs, "Deployment")}
    jobs = [j["spec"]["template"]["metadata"]["labels"] for j in of_kind(docs, "Job")]
    jobs += [pod_spec_labels for pod_spec_labels in
             (c["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
              for c in of_kind(docs, "CronJob"))]

    # everything Kaowu runs is denied by default, both ways
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}]
    assert deny
    for labels in [*pods.values(), *jobs]:
        assert any(selects(p, labels) for p in deny)

    def rules(labels, direction):
        return [r for p in policies if selects(p, labels) and direction.capitalize()
                in p["spec"]["policyTypes"] for r in p["spec"].get(direction, [])]

    base = {("kaowu-rabbitmq", 5672), ("kube-dns", 53)}
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
        # out: RabbitMQ, DNS; PostgreSQL if it has a database; the SMS provider (HTTPS) for
        # the notification service; nothing else
        expected = set(base)
        if has_database(name):
            expected.add(("kaowu-pg", 5432))
        if name == "notification":
            expected |= {("0.0.0.0/0", 443), ("::/0", 443)}
        assert egress_targets(rules(labels, "egress")) == expected, name
    for labels in jobs:  # migrations and rebuilds: their database and DNS
        assert egress_targets(rules(labels, "egress")) == {("kaowu-pg", 5432), ("kube-dns", 53)}

    # the data stores take their protocols only from Kaowu's pods (and their own kin)
    rabbit = next(p for p in policies if p["spec"]["podSelector"]["matchLabels"]
                  == {"app.kubernetes.io/name": "kaowu-rabbitmq"})
    amqp = [r for r in rabbit["spec"]["ingress"] if {"protocol": "TCP", "port": 5672} in r.get("ports", [])]
    assert amqp and all(peer["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"] == "kaowu"
                        for r in amqp for peer in r["from"])
    pg = next(p for p in policies if p["spec"]["podSelector"]["matchLabels"]
              == {"cnpg.io/cluster": "kaowu-pg"})
    assert all(r.get("from") for r in pg["spec"]["ingress"])
    sql = [r for r in pg["spec"]["ingress"] if {"protocol": "TCP", "port": 5432} in r.get("ports", [])
           and any("podSelector" in peer and "namespaceSelector" not in peer for peer in r["from"])]
    for labels in [*pods.values(), *jobs]:
        reaches = any(peer["podSelector"]["matchLabels"].items() <= labels.items()
                      for r in sql for peer in r["from"])
        assert reaches == (labels.get("kaowu/database") == "true")
    assert not pods["gateway"].get("kaowu/database")


def test_the_gateway_tells_clients_apart_behind_the_ingress(rendered):
    """GATEWAY_TRUSTED_PROXIES reaches the gateway's pods and names where the ingress
    controller comes from (a pod network or a node), not the internet: behind it each
    client has its own address for the per-address limits and the login lockout, and a
    client cannot name another address by sending X-Forwarded-For itself."""
    from services.gateway.auth import client_address, trusted_networks

    overlay, docs = rendered
    gateway = named(docs, "Deployment", "kaowu-gateway")
    setting = pod_env(gateway, docs, fake_secrets(overlay))["GATEWAY_TRUSTED_PROXIES"]
    trusted = trusted_networks(setting)
    assert trusted and all(n.is_private and n.prefixlen >= 8 for n in trusted), setting
    client = "203.0.113.9"
    # ingress-nginx pods on the usual pod networks, and on a node's address (hostNetwork)
    for controller in ("10.244.1.7", "10.42.0.5", "192.168.3.4", "172.16.5.6", "10.0.12.3"):
        assert client_address(controller, client, trusted) == client, controller
        # what a client claims further left is not believed
        assert client_address(controller, f"198.51.100.1, {client}", trusted) == client
    # from outside the private networks nothing is believed
    assert client_address(client, "198.51.100.1", trusted) == client
    # the trust stands on the network policy: only the ingress controller (and Prometheus)
    # may reach the gateway at all
    sources = {peer.get("namespaceSelector", {}).get("matchLabels", {})
               .get("kubernetes.io/metadata.name")
               for p in of_kind(docs, "NetworkPolicy")
               if selects(p, gateway["spec"]["template"]["metadata"]["labels"])
               for r in p["spec"].get("ingress", []) for peer in r["from"]}
    assert sources == {"ingress-nginx", "monitoring"}


def test_ingress_exposes_the_public_routes_only(rendered):
    """The Ingress sends the gateway what the public needs (the API, the certificate
    verification pages, issuer and status lists, the dashboard's page) and never the
    probes or /metrics."""
    from services.gateway.service import GatewayService
    from services.gateway.uploads import FORM_OVERHEAD, MAX_CSV, MAX_PROOF_FILE, MAX_PROOF_FILES

    _, docs = rendered
    (ingress,) = of_kind(docs, "Ingress")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert {p["backend"]["service"]["name"] for p in paths} == {"kaowu-gateway"}
    # Prefix paths, and the web site's page at "/" exactly (a "/" prefix would take all)
    assert {(p["pathType"], p["path"]) for p in paths if p["pathType"] != "Prefix"} == {
        ("Exact", "/")}
    prefixes = [p["path"] for p in paths if p["pathType"] == "Prefix"]
    exact = [p["path"] for p in paths if p["pathType"] == "Exact"]

    def exposed(url):
        return url in exact or any(url == p or url.startswith(p.rstrip("/") + "/")
                                   for p in prefixes)

    routes = http_routes(service_class("gateway"))
    assert routes >= PROBES
    for url in routes:
        assert exposed(url) == (url not in PROBES), url
    for prefix in prefixes:
        assert any(exposed(url) and url.startswith(prefix) for url in routes), \
            f"{prefix} leads to no route of the gateway"
    assert "/api/openapi.json" in routes and service_class("gateway") is GatewayService

    # the certificates' links (PUBLIC_BASE_URL/...) go through it
    base_url = env_configmap(docs)["PUBLIC_BASE_URL"]
    assert base_url == f"https://{ingress['spec']['rules'][0]['host']}"
    for path in ("/verify/abc", "/issuer", "/credentials/status/0"):
        assert exposed(path), path

    # the per-address limits are the code's own: the gateway tells clients apart (below)
    setup_yaml_parser()
    config = yaml.safe_load((K8S / "base" / "nameko-config.yml").read_text("utf-8"))
    for limit in ("GATEWAY_LOGIN_LIMIT", "GATEWAY_SIGNUP_LIMIT", "GATEWAY_RESET_LIMIT"):
        assert limit not in config or config[limit]["per_address"] <= 100, limit

    # the largest request body the gateway takes passes the ingress and, base64 in one RPC,
    # the broker
    largest = max(MAX_PROOF_FILE * MAX_PROOF_FILES + FORM_OVERHEAD, MAX_CSV)
    size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert size.endswith("m") and int(size[:-1]) * 2**20 >= largest
    (cluster,) = of_kind(docs, "RabbitmqCluster")
    config = cluster["spec"]["rabbitmq"]["additionalConfig"]
    max_message = int(re.search(r"^max_message_size\s*=\s*(\d+)$", config, re.M).group(1))
    assert max_message >= len(base64.b64encode(b"x" * MAX_PROOF_FILE * MAX_PROOF_FILES)) + 2**20


# -- monitoring -----------------------------------------------------------------------------

def metric_names(expr: str) -> set[str]:
    names = set()
    for m in re.findall(r"\bkaowu_[a-z_]+\b", expr):
        for suffix in ("_bucket", "_count", "_sum", "_total"):
            if m.endswith(suffix) and m[: -len(suffix)] in EXPORTED:
                m = m[: -len(suffix)]
        names.add(m)
    return names


# RabbitMQ's per-queue figures (rabbitmq_prometheus, /metrics/detailed), by the family that
# brings them (the plugin's prometheus_rabbitmq_core_metrics_collector.erl, METRICS_RAW,
# with the endpoint's prefix rabbitmq_detailed_); rabbitmq-servicemonitor.yaml asks for
# families by name
RABBITMQ_DETAILED = {
    "queue_coarse_metrics": {"rabbitmq_detailed_queue_messages",
                             "rabbitmq_detailed_queue_messages_ready",
                             "rabbitmq_detailed_queue_messages_unacked",
                             "rabbitmq_detailed_queue_process_reductions_total"},
    "queue_consumer_count": {"rabbitmq_detailed_queue_consumers"},
    "queue_delivery_metrics": {"rabbitmq_detailed_queue_get_ack_total",
                               "rabbitmq_detailed_queue_get_total",
                               "rabbitmq_detailed_queue_messages_delivered_ack_total",
                               "rabbitmq_detailed_queue_messages_delivered_total",
                               "rabbitmq_detailed_queue_messages_redelivered_total",
                               "rabbitmq_detailed_queue_messages_acked_total",
                               "rabbitmq_detailed_queue_get_empty_total"},
    "queue_exchange_metrics": {"rabbitmq_detailed_queue_exchange_messages_published_total"},
}


def rabbitmq_scraped() -> set[str]:
    """The RabbitMQ metrics the ServiceMonitor's families bring."""
    setup_yaml_parser()
    sm = yaml.safe_load((MONITORING / "rabbitmq-servicemonitor.yaml").read_text("utf-8"))
    (endpoint,) = sm["spec"]["endpoints"]
    families = endpoint["params"]["family"]
    assert set(families) <= set(RABBITMQ_DETAILED), set(families) - set(RABBITMQ_DETAILED)
    return set().union(*(RABBITMQ_DETAILED[f] for f in families))


def label_matchers(selector: str) -> dict:
    return {k: v for k, op, v in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector)
            if op == "="}


@pytest.fixture(scope="module")
def business_counts(tmp_path_factory):
    """``business_counts()`` of a service on an empty database: the names it exports."""
    from shared.eventstore.store import open_store

    cache = {}

    def of(name):
        if name not in cache:
            provider = store_provider(name)
            url = f"sqlite:///{tmp_path_factory.mktemp(name)}/{name}.db"
            store = open_store(url, provider.registry, projections=provider.projections)
            try:
                cache[name] = service_class(name).business_counts(SimpleNamespace(store=store))
            finally:
                store.engine.dispose()
        return cache[name]
    return of


def check_expressions(exprs, business_counts):
    """Every expression parses as PromQL (Grafana's variables filled in); every metric it
    uses exists: Kaowu's (shared/metrics.py), ``up``, the process collector's, or RabbitMQ's
    queue figures the ServiceMonitor scrapes; every business count it picks is one a service
    exports."""
    import promql_parser

    from services.notification.domain import SMS_STATUSES

    for expr in exprs:
        filled = (expr.replace("$namespace", "kaowu").replace("$service", ".*")
                .replace("$__rate_interval", "2m"))
        try:
            promql_parser.parse(filled)
        except ValueError as exc:
            pytest.fail(f"not PromQL: {expr}: {exc}")
        unknown = metric_names(expr) - set(EXPORTED)
        assert not unknown, f"{expr}: uses metrics nobody exports: {unknown}"
        rabbit = set(re.findall(r"\brabbitmq_[a-z_]+\b", expr))
        assert rabbit <= rabbitmq_scraped(), f"{expr}: not scraped: {rabbit - rabbitmq_scraped()}"
        process = {m.removesuffix("_total") for m in re.findall(r"\bprocess_[a-z_]+\b", expr)}
        assert process <= set(PROCESS), process - set(PROCESS)
        for selector in re.findall(r"kaowu_business_count\{([^}]*)\}", expr):
            labels = label_matchers(selector)
            service, name = labels.get("service"), labels.get("name")
            assert service in discover_services(), f"{expr}: no service {service!r}"
            assert name in business_counts(service), f"{service} exports no business count {name!r}"
            if (service, name) == ("notification", "sms") and "status" in labels:
                assert labels["status"] in SMS_STATUSES, labels


def test_the_expression_check_is_not_blind(business_counts):
    check_expressions(['max by (service) (kaowu_relay_lag_events{namespace="$namespace"}) > 0'],
                      business_counts)
    for broken in ("max by (service) (kaowu_relay_lag_events > 0",  # a parenthesis short
                   "kaowu_relay_lag_events > > 0",
                   "rate(kaowu_relay_published_total[5 m])"):
        with pytest.raises(pytest.fail.Exception, match="not PromQL"):
            check_expressions([broken], business_counts)


def test_alert_rules_watch_real_metrics(prod, business_counts):
    (rule,) = of_kind(prod, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for needed in ("KaowuServiceDown", "KaowuRelayLagGrowing", "KaowuConsumerLagGrowing",
                   "KaowuDeadLetters", "KaowuDeadLetterQueue", "KaowuSmsDeliveryFailures",
                   "KaowuSmsQueueStuck"):
        assert needed in alerts
    assert "kaowu_relay_lag_events" in alerts["KaowuRelayLagGrowing"]["expr"]
    assert "kaowu_consumer_lag_events" in alerts["KaowuConsumerLagGrowing"]["expr"]
    assert 'up{job="kaowu"}' in alerts["KaowuServiceDown"]["expr"]
    check_expressions([r["expr"] for r in alerts.values()], business_counts)
    for r in alerts.values():
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert r["annotations"]["summary"]
    notification = [r for g in rule["spec"]["groups"] for r in g["rules"]
                    if "kaowu_business_count" in r["expr"]]
    assert {r["alert"] for r in notification} >= {"KaowuSmsDeliveryFailures", "KaowuSmsQueueStuck"}
    assert 'status="failed"' in alerts["KaowuSmsDeliveryFailures"]["expr"]


def test_signal_alerts(prod):
    """Queues growing, deadline effects not run, manual checks left as verification closes,
    SMS failing above a rate: each alert watches the figure made for it."""
    (rule,) = of_kind(prod, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    queue = alerts["KaowuQueueGrowing"]
    assert "rabbitmq_detailed_queue_messages_ready" in queue["expr"] and "deriv(" in queue["expr"]
    late = alerts["KaowuDeadlineNotRun"]
    assert re.fullmatch(r"max by \(namespace, service, session_id, deadline\) "
                        r"\(kaowu_deadline_overdue_seconds\) > 60", late["expr"])
    assert late["labels"]["severity"] == "critical"
    manual = alerts["KaowuManualCheckQueueAtClose"]["expr"]
    assert "kaowu_manual_check_queue" in manual and 'window="verification"' in manual
    assert "time() < 7200" in manual  # two hours before the close
    sms = alerts["KaowuSmsFailureRate"]["expr"]
    assert 'status="failed"' in sms and 'status="sent"' in sms and "> 0.05" in sms


def test_dead_letter_alerts(prod):
    """Dead letters kept for more than 5 minutes alert, with what to do about them; the
    commands named there exist."""
    from cli.main import dlq_app

    (rule,) = of_kind(prod, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    logs = alerts["KaowuDeadLetters"]
    assert re.fullmatch(rf"max by \(namespace, service\) \({DEAD_LETTERS}\) > 0", logs["expr"])
    assert logs["for"] == "5m"
    queue = alerts["KaowuDeadLetterQueue"]
    assert f'queue="{deadletter.NAME}"' in queue["expr"] and queue["expr"].endswith("> 0")
    assert queue["for"] == "5m"
    commands = {c.name for c in dlq_app.registered_commands}
    for alert in (logs, queue):
        runbook = alert["annotations"]["runbook"]
        for command in ("list", "replay"):
            assert f"`kaowu dlq {command}`" in runbook and command in commands
        # in the cluster: the command line's own image, in a pod (deploy/k8s/kaowu-cli)
        assert "deploy/k8s/kaowu-cli -n {{ $labels.namespace }} dlq list" in runbook
        assert (ROOT / "deploy" / "k8s" / "kaowu-cli").stat().st_mode & 0o111

    # the queue's depth is scraped: RabbitMQ's Service, the vhost's per-queue figures
    sm = named(prod, "ServiceMonitor", "kaowu-rabbitmq")
    (cluster,) = of_kind(prod, "RabbitmqCluster")
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == cluster["metadata"]["name"]
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "prometheus" and endpoint["path"] == "/metrics/detailed"
    assert "queue_coarse_metrics" in endpoint["params"]["family"]
    vhost = next(v for v in of_kind(prod, "Vhost") if v["spec"]["name"] == "kaowu")
    assert endpoint["params"]["vhost"] == [vhost["spec"]["name"]]
    queues = {q["spec"]["name"] for q in of_kind(prod, "Queue")}
    assert deadletter.NAME in queues
    # and Prometheus may reach it
    rabbit = next(p for p in of_kind(prod, "NetworkPolicy") if p["spec"]["podSelector"]["matchLabels"]
                  == {"app.kubernetes.io/name": "kaowu-rabbitmq"})
    assert any({"protocol": "TCP", "port": 15692} in r.get("ports", [])
               and r["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               == "monitoring" for r in rabbit["spec"]["ingress"])


def test_grafana_dashboard(prod, business_counts):
    dashboard = json.loads((MONITORING / "grafana" / "kaowu-overview.json").read_text("utf-8"))
    panels = {p["title"]: p for p in dashboard["panels"]}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and dashboard["uid"] == "kaowu-overview"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    check_expressions(exprs, business_counts)
    used = set().union(*(metric_names(e) for e in exprs))
    for must in ("kaowu_relay_lag_events", "kaowu_consumer_lag_events",
                 "kaowu_entrypoint_duration_seconds", "kaowu_events_appended",
                 "kaowu_business_count", DEAD_LETTERS, "kaowu_http_requests",
                 "kaowu_manual_check_queue", "kaowu_deadline_overdue_seconds"):
        assert must in used
    everything = " ".join(exprs)
    for must in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "rabbitmq_detailed_queue_messages_ready",
                 "rabbitmq_detailed_queue_exchange_messages_published_total",
                 "rabbitmq_detailed_queue_messages_acked_total"):
        assert must in everything, must
    gateway = " ".join(t["expr"] for t in panels["Gateway requests per second, by route and "
                                                 "status"]["targets"])
    assert "by (route, status)" in gateway
    dead = " ".join(t["expr"] for t in panels["Dead letters (unreplayed)"]["targets"])
    assert DEAD_LETTERS in dead and f'queue="{deadletter.NAME}"' in dead
    sms = " ".join(t["expr"] for p in dashboard["panels"] if "SMS" in p["title"]
                   for t in p["targets"])
    assert 'service="notification", name="sms"' in sms and 'status="failed"' in sms
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
            words = rest.split()
            current = {"from": words[0], "lines": [],
                       "name": words[2] if len(words) > 2 and words[1].upper() == "AS" else None}
            stages.append(current)
        else:
            current["lines"].append((instruction, rest.strip()))
    return stages


def _stage_chain(stages, stage) -> list[dict]:
    """A stage and the stages it is built FROM, nearest first."""
    by_name = {st["name"]: st for st in stages if st["name"]}
    chain = [stage]
    while chain[-1]["from"] in by_name:
        chain.append(by_name[chain[-1]["from"]])
    return chain


def test_dockerfile(prod):
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: a builder and a slim runtime"
    builder, runtime = stages[0], stages[-1]
    # the service image is the default target (the last stage); its lines with its bases'
    assert runtime["name"] == "runtime"
    chain = _stage_chain(stages, runtime)
    lines = [line for stage in reversed(chain) for line in stage["lines"]]
    runs = " ".join(rest for ins, rest in builder["lines"] if ins == "RUN")
    assert "-c constraints.txt" in runs, "installs pinned by constraints.txt"
    assert chain[-1]["from"].startswith("python:3.11-slim")
    users = [rest for ins, rest in lines if ins == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    expose = {int(rest.split("/")[0]) for ins, rest in lines if ins == "EXPOSE"}
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
    # the service image's virtualenv is the builder's: the dependencies, no extra
    venvs = [rest for ins, rest in lines if ins == "COPY" and "/opt/venv" in rest]
    assert venvs == [f"--from={builder['name']} /opt/venv /opt/venv"]
    assert "optional-dependencies" not in runs

    # what the image copies exists and is not kept out of the build by .dockerignore
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    sources = [src for stage in stages for ins, rest in stage["lines"]
               if ins == "COPY" and "--from" not in rest
               for src in rest.split()[:-1] if not src.startswith("--")]
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not any(src == pat or src.startswith(pat.rstrip("/") + "/") for pat in ignored), src
    # the files services read at run time are in the service image; the command line not
    runtime_sources = [src for ins, rest in lines if ins == "COPY" and "--from" not in rest
                       for src in rest.split()[:-1] if not src.startswith("--")]
    for needed in ("config.yml", "shared", "services", "deploy/sessions", "deploy/reference"):
        assert needed in runtime_sources, f"the image lacks {needed}"
    assert "cli" not in runtime_sources
    for needed in ("pyproject.toml", "constraints.txt"):
        assert needed in sources
    runtime_runs = " ".join(rest for ins, rest in lines if ins == "RUN")
    # the command line: a target of its own, the same base plus the cli extra and cli/;
    # `kaowu` (the runbooks' `kaowu dlq list`) runs the command line package
    cli = next(stage for stage in stages if stage["name"] == "cli")
    cli_chain = _stage_chain(stages, cli)
    assert cli_chain[-1] is chain[-1] and len(cli_chain) == 2
    cli_builder = next(stage for stage in stages if stage["name"] == "cli-builder")
    assert cli_builder["from"] == builder["name"]
    cli_runs = " ".join(rest for ins, rest in cli_builder["lines"] if ins == "RUN")
    assert "['optional-dependencies']['cli']" in cli_runs and "-c constraints.txt" in cli_runs
    assert ("COPY", "--from=cli-builder /opt/venv /opt/venv") in cli["lines"]
    assert ("COPY", "cli ./cli") in cli["lines"]
    assert re.search(r"exec python -m cli \"\$@\"\\n' > /usr/local/bin/kaowu",
                     " ".join(rest for ins, rest in cli["lines"] if ins == "RUN"))
    assert json.loads(next(rest for ins, rest in cli["lines"] if ins == "ENTRYPOINT")) == ["kaowu"]
    assert (ROOT / "cli" / "__main__.py").is_file()
    # the PDFs' CJK font (shared/pdf.py), the package the Makefile pins, on the Debian
    # release that pin is for
    font = re.search(r"fonts-wqy-zenhei=\S+", (ROOT / "Makefile").read_text("utf-8")).group(0)
    assert font in runtime_runs
    from shared.pdf import FONT_CANDIDATES

    assert FONT_CANDIDATES[0].endswith("/wqy/wqy-zenhei.ttc")
    assert all("-bookworm" in stage["from"] for stage in stages
               if stage["from"] not in {st["name"] for st in stages})
    # the web site: built from web/ by its lockfile in a node stage, copied into the runtime
    site = next(stage for stage in stages if stage["from"].startswith("node:"))
    site_runs = " ".join(rest for ins, rest in site["lines"] if ins == "RUN")
    assert "npm ci" in site_runs and "npm run build" in site_runs
    assert any(ins == "COPY" and "--from=site" in rest and "services/gateway/static/site" in rest
               for ins, rest in runtime["lines"])


def test_the_command_line_runs_in_the_cluster_as_a_pod_of_its_image(tmp_path, prod):
    """deploy/k8s/kaowu-cli (what the runbooks run) starts a pod of the CLI image with a
    valid Pod spec, the service pods' broker settings and labels the network policies let
    reach RabbitMQ, and no Service selects it."""
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *\"get deployment\"*) "
                    "echo registry.example.org/kaowu/kaowu:0.1.0 kaowu-env-9cbcbd5995; exit 0;; esac\n"
                    "python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n")
    fake.chmod(0o755)
    import os

    out = subprocess.run([str(K8S / "kaowu-cli"), "-n", "kaowu", "dlq", "show", "a b"],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert out.returncode == 0, out.stderr
    argv = json.loads(out.stdout)
    assert argv[:3] == ["-n", "kaowu", "run"] and "--rm" in argv
    assert "--image=registry.example.org/kaowu/kaowu:0.1.0-cli" in argv
    labels = dict(kv.split("=") for kv in next(
        a for a in argv if a.startswith("--labels="))[len("--labels="):].split(","))
    spec = json.loads(next(a for a in argv if a.startswith("--overrides="))[len("--overrides="):])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kaowu-cli", "labels": labels},
           **spec}
    (container,) = pod["spec"]["containers"]
    container.setdefault("image", "x")
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    assert container["args"] == ["dlq", "show", "a b"]
    gateway = named(prod, "Deployment", "kaowu-gateway")
    (service,) = pod_spec(gateway)["containers"]
    broker = {k: v for k, v in env_of(service).items() if k.startswith("AMQP")}
    assert env_of(container) == broker
    assert container["envFrom"] == [{"configMapRef": {"name": "kaowu-env-9cbcbd5995"}}]
    assert service["envFrom"][0]["configMapRef"]["name"] == env_configmap_name(prod)
    assert pod["spec"]["securityContext"]["runAsUser"] == pod_spec(gateway)["securityContext"]["runAsUser"]
    policies = of_kind(prod, "NetworkPolicy")
    assert any(selects(p, labels) and any(
        peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        == "kaowu-rabbitmq" for r in p["spec"].get("egress", []) for peer in r.get("to", []))
        for p in policies)
    for svc in of_kind(prod, "Service"):
        selector = svc["spec"].get("selector") or {}
        assert not (selector and selector.items() <= labels.items()), svc["metadata"]["name"]


def test_every_base_image_is_pinned_by_digest():
    """A tag moves; a digest does not: every FROM names an image by digest, or an earlier
    stage of the same Dockerfile (the Dockerfile's header says how to refresh them)."""
    stages, names = [], set()
    for raw in (ROOT / "Dockerfile").read_text("utf-8").splitlines():
        parts = raw.split()
        if parts and parts[0].upper() == "FROM":
            args = [p for p in parts[1:] if not p.startswith("--platform")]
            image = args[0]
            if image not in names and image != "scratch":
                assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", image), \
                    f"FROM {image}: pin it by digest (image:tag@sha256:...)"
                stages.append(image)
            if len(args) >= 3 and args[1].upper() == "AS":
                names.add(args[2])
    assert stages, "no base image found"


# distributions only the tests, the benchmarks or the linters use (the dev extra): none of
# them may reach the service image, which installs project.dependencies and what they need
DEV_ONLY = {"pytest", "hypothesis", "testcontainers", "ruff", "eventsourcing", "psycopg",
            "hdrhistogram", "kubernetes-validate", "pypdf", "zxing-cpp", "selenium",
            "schemathesis", "jsonschema", "docker", "trio", "iniconfig", "pluggy"}
# what the operator command line (cli/, its own image: deploy/k8s/kaowu-cli) needs and the
# services do not: never in the service image
CLI_ONLY = {"typer", "rich", "pydantic", "pydantic-core", "annotated-types",
            "typing-inspection", "shellingham", "annotated-doc", "markdown-it-py", "mdurl",
            "pygments"}


def image_distributions() -> set[str]:
    """The distributions the image's builder installs: project.dependencies and, through
    their metadata here (the same pins: constraints.txt), everything they require."""
    import tomllib
    from importlib.metadata import distribution

    from packaging.requirements import Requirement

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    todo = [Requirement(r) for r in tomllib.loads(
        (ROOT / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]]
    seen = set()
    while todo:
        req = todo.pop()
        if norm(req.name) in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(norm(req.name))
        todo += [Requirement(r) for r in distribution(req.name).requires or ()]
    return seen


def test_the_service_image_carries_no_test_tooling():
    installed = image_distributions()
    assert not installed & DEV_ONLY, installed & DEV_ONLY
    assert not installed & CLI_ONLY, installed & CLI_ONLY  # the command line: its own image
    # the `cli` extra brings them
    import tomllib

    from tests.unit.test_service_imports import closure

    cli = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))[
        "project"]["optional-dependencies"]["cli"]
    assert closure(cli) >= {"typer", "rich"}
    # the image copies no tests, benchmarks or fault drills
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()}
    assert {"tests", "bench"} <= ignored


# -- the Jobs' commands are real --------------------------------------------------------------

def test_migrate_and_rebuild_commands_run(tmp_path, monkeypatch, capsys):
    from shared import migrate, rebuild

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/{{service}}.db")
    # what the Jobs run: one service each, every service with a database
    with_database = sorted(database_services())
    assert migrate.main(with_database) == 0
    out = capsys.readouterr().out
    for name in with_database:
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


# -- stopping: the grace period outlasts what the code waits for ------------------------------

def test_the_grace_period_outlasts_what_a_stopping_worker_waits_for(rendered):
    """terminationGracePeriodSeconds > the preStop sleep + the longest wait a worker may be
    in when SIGTERM comes (RPC_TIMEOUT, GATEWAY_RPC_TIMEOUT, an SMS request: the code's own
    settings, as each pod's nameko config and environment set them) + the runner's margin.
    A pod killed at the end of its grace period loses the work in flight."""
    from shared.runner import STOP_MARGIN, stop_waits

    setup_yaml_parser()
    _, docs = rendered
    settings = env_configmap(docs)
    for d in of_kind(docs, "Deployment"):
        spec = pod_spec(d)
        (container,) = spec["containers"]
        env = {**settings, **{e["name"]: e["value"] for e in container.get("env", [])
                              if "value" in e}}
        config_text = (K8S / "base" / "nameko-config.yml").read_text("utf-8")
        config = yaml.safe_load(config_text) or {}
        config.update({k: v for k, v in env.items() if k.startswith(("SMS_", "RPC_", "GATEWAY_RPC"))})
        waits = stop_waits(config)
        sleep = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
        needed = sleep + max(waits.values()) + STOP_MARGIN
        assert spec["terminationGracePeriodSeconds"] > needed, (
            f"{d['metadata']['name']}: grace {spec['terminationGracePeriodSeconds']} s, but "
            f"preStop {sleep} s + {max(waits, key=waits.get)} {max(waits.values()):g} s + "
            f"{STOP_MARGIN:g} s margin = {needed:g} s")
    # the figures are the code's: RPC_TIMEOUT's default is what RpcProxy waits
    from shared.dependencies import DEFAULT_RPC_TIMEOUT
    assert stop_waits({})["RPC_TIMEOUT"] == DEFAULT_RPC_TIMEOUT
    assert stop_waits({"RPC_TIMEOUT": 90})["RPC_TIMEOUT"] == 90
