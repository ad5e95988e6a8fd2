"""deploy/kubernetes: manifests valid against the Kubernetes schemas (offline, with
kubernetes-validate), CRD objects checked structurally, and every piece consistent with
the others (config, Secret, mounts, ports, probes, Service, ServiceMonitor, rules)."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import (
    DEPLOY,
    RULES_FILE,
    load_yaml,
    load_yaml_all,
    require_tool,
    run_tool,
    supervisor_stop_timeout,
)

K8S = DEPLOY / "kubernetes"
#: The Kubernetes version the core objects are validated against.
K8S_VERSION = "1.30"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
PORT = 9464


def _kustomization() -> dict[str, Any]:
    return load_yaml(K8S / "kustomization.yaml")


def _resources() -> list[dict[str, Any]]:
    """The objects of the kustomization's resources, plus the generated ConfigMap."""
    objects: list[dict[str, Any]] = []
    for name in _kustomization()["resources"]:
        objects.extend(load_yaml_all(K8S / name))
    for generator in _kustomization()["configMapGenerator"]:
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.partition("=")
            data[key] = (K8S / (path or key)).read_text(encoding="utf-8")
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return objects


def _one(kind: str) -> dict[str, Any]:
    found = [obj for obj in _resources() if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _container() -> dict[str, Any]:
    containers = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _mounts() -> dict[str, dict[str, Any]]:
    """Volume name -> {"mount": volumeMount, "volume": volume}."""
    pod = _one("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {
        m["name"]: {"mount": m, "volume": volumes[m["name"]]} for m in _container()["volumeMounts"]
    }


def _config() -> dict[str, Any]:
    return tomllib.loads(_one("ConfigMap")["data"]["collector.toml"])


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", K8S / "render_prometheusrule.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "obj",
    [o for o in _resources() if o["kind"] not in CRD_KINDS],
    ids=lambda o: f"{o['kind']}/{o['metadata']['name']}",
)
def test_core_objects_validate_against_the_kubernetes_schema(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_schema_validation_rejects_a_misspelt_field() -> None:
    """The validation above is strict: an unknown field in the Deployment fails it."""
    deployment = _one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_every_manifest_is_part_of_the_kustomization() -> None:
    listed = set(_kustomization()["resources"])
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests == listed


def test_kustomize_build_renders_every_object() -> None:
    kubectl = require_tool("kubectl")
    status, output = run_tool([kubectl, "kustomize", str(K8S)])
    assert status == 0, output
    rendered = [doc for doc in yaml.safe_load_all(output) if doc]
    kinds = sorted(obj["kind"] for obj in rendered)
    assert kinds == sorted(obj["kind"] for obj in _resources())
    assert {obj["metadata"].get("namespace") for obj in rendered if obj["kind"] != "Namespace"} == {
        "collectord"
    }
    for obj in rendered:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # The generated ConfigMap's hashed name is what the Deployment mounts.
    config_map = next(obj for obj in rendered if obj["kind"] == "ConfigMap")
    deployment = next(obj for obj in rendered if obj["kind"] == "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": config_map["metadata"]["name"]} in [v.get("configMap") for v in volumes]


def test_deployment_runs_one_poller_at_a_time() -> None:
    spec = _one("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == supervisor_stop_timeout()


def test_deployment_probes_health_and_readiness_on_the_metrics_port() -> None:
    container = _container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http-metrics": PORT}
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    assert ports[liveness["port"]] == PORT
    assert ports[readiness["port"]] == PORT


def test_deployment_is_locked_down() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    container = _container()
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()


def test_container_runs_collectord_with_the_mounted_config_and_json_logs() -> None:
    container = _container()
    argv = container["command"] + container["args"]
    assert argv[:2] == ["collectord", "run"]
    config_path = Path(argv[argv.index("-c") + 1])
    assert argv[argv.index("--log-format") + 1] == "json"
    config = _mounts()["config"]
    assert config["volume"]["configMap"]["name"] == _one("ConfigMap")["metadata"]["name"]
    assert config_path.parent == Path(config["mount"]["mountPath"])
    assert config_path.name in _one("ConfigMap")["data"]


def test_config_listens_on_all_interfaces_at_the_container_port() -> None:
    assert _config()["collector"]["listen"] == f"0.0.0.0:{PORT}"
    assert _config()["collector"]["log_format"] == "json"


def test_state_dir_is_an_empty_dir_volume() -> None:
    state_dir = Path(_config()["collector"]["state_dir"])
    by_path = {Path(m["mount"]["mountPath"]): m for m in _mounts().values()}
    assert state_dir in by_path, "state_dir is not mounted"
    assert "emptyDir" in by_path[state_dir]["volume"]
    assert not by_path[state_dir]["mount"].get("readOnly", False)


def test_tokens_are_secret_files_named_by_file_keys() -> None:
    """Every `*_file` key of the config names a key of the mounted Secret; no inline token."""
    config = _config()
    secret = _one("Secret")
    tokens = _mounts()["tokens"]
    assert tokens["volume"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert tokens["mount"]["readOnly"] is True
    secret_dir = Path(tokens["mount"]["mountPath"])
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    tables = [config.get("graph", {}), *config["source"]]
    file_keys = [(t, k) for t in tables for k in t if k.endswith("_file")]
    assert {k for _, k in file_keys} >= {"access_token_file"}
    for table, key in file_keys:
        path = Path(table[key])
        assert path.parent == secret_dir, f"{key} = {path} is not in the Secret's mount"
        assert path.name in keys, f"{key} = {path}: the Secret has no key {path.name!r}"
    for source in config["source"]:
        assert "access_token" not in source, f"source {source['name']!r} has an inline token"


def test_service_and_service_monitor_reach_the_pod() -> None:
    service = _one("Service")
    monitor = _one("ServiceMonitor")
    pod_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["metadata"]["name"] == "collectord"  # job="collectord" in the rules
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in _container()["ports"]}
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"


def test_prometheus_rule_holds_the_shipped_rules() -> None:
    rule = _one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"]
    groups = rule["spec"]["groups"]
    assert groups == load_yaml(RULES_FILE)["groups"]
    for group in groups:
        assert group["name"]
        assert group["rules"]
        for item in group["rules"]:
            assert ("record" in item) != ("alert" in item)
            assert isinstance(item["expr"], str)
            assert item["expr"].strip()


def test_prometheus_rule_file_is_up_to_date() -> None:
    """prometheusrule.yaml is exactly what render_prometheusrule.py makes of the rules."""
    rendered = _render_module().render(RULES_FILE.read_text(encoding="utf-8"))
    current = (K8S / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert current == rendered, "run: python deploy/kubernetes/render_prometheusrule.py"


def test_config_passes_collectord_check(tmp_path: Path) -> None:
    """`collectord check` accepts the ConfigMap's config with the Secret's files in place."""
    secret_dir = Path(_mounts()["tokens"]["mount"]["mountPath"])
    for key, value in _one("Secret")["stringData"].items():
        (tmp_path / key).write_text(value, encoding="utf-8")
    text = _one("ConfigMap")["data"]["collector.toml"].replace(f"{secret_dir}/", f"{tmp_path}/")
    config = tmp_path / "collector.toml"
    config.write_text(text, encoding="utf-8")
    status, output = run_tool([sys.executable, "-m", "collectord", "check", "-c", str(config)])
    assert status == 0, output
