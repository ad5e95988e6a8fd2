"""deploy/kubernetes-sharded: the base manifests with a StatefulSet of N shards in place of
the Deployment. Rendered by ``kubectl kustomize`` and validated against the Kubernetes
schemas like the base; the pods' names resolve to every shard once; the ServiceMonitor and
the Prometheus scrape config find every replica."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from deploy_support import DEPLOY, load_yaml, load_yaml_all, require_tool, run_tool

from collectord.sharding import resolve

BASE = DEPLOY / "kubernetes"
SHARDED = DEPLOY / "kubernetes-sharded"
K8S_VERSION = "1.30"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


@cache
def _rendered_text() -> str:
    kubectl = require_tool("kubectl")
    status, output = run_tool([kubectl, "kustomize", str(SHARDED)])
    assert status == 0, output
    return output


def _rendered() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(_rendered_text()) if doc]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _statefulset() -> dict[str, Any]:
    (obj,) = load_yaml_all(SHARDED / "statefulset.yaml")
    return obj


def _shard_spec(statefulset: dict[str, Any]) -> str:
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    return str(args[args.index("--shard") + 1])


def test_the_statefulset_validates_against_the_kubernetes_schema() -> None:
    kubernetes_validate.validate(_statefulset(), K8S_VERSION, strict=True)


def test_the_pods_are_the_base_pods_plus_their_shard() -> None:
    """The StatefulSet's pod is the base Deployment's, its arguments ending with
    ``--shard auto/N``: a change to the base pod must be made here too."""
    (deployment,) = load_yaml_all(BASE / "deployment.yaml")
    base_pod = deployment["spec"]["template"]
    pod = _statefulset()["spec"]["template"]
    base_args = base_pod["spec"]["containers"][0]["args"]
    assert pod["spec"]["containers"][0]["args"] == [
        *base_args,
        "--shard",
        _shard_spec(_statefulset()),
    ]
    pod["spec"]["containers"][0]["args"] = base_args
    assert pod == base_pod


def test_every_pod_name_resolves_to_its_own_shard() -> None:
    statefulset = _statefulset()
    replicas = statefulset["spec"]["replicas"]
    spec = _shard_spec(statefulset)
    assert spec == f"auto/{replicas}", "--shard auto/N must say N = replicas"
    assert replicas > 1
    name = statefulset["metadata"]["name"]
    shards = [resolve(spec, hostname=f"{name}-{i}").label for i in range(replicas)]
    assert shards == [f"{i}/{replicas}" for i in range(replicas)]
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"


def test_the_container_command_line_passes_collectord_check(tmp_path: Path) -> None:
    """The exact arguments of the sharded container, on the base config (tokens in
    place), as pod 1 would run them."""
    config = (BASE / "collector.toml").read_text(encoding="utf-8")
    config = config.replace("/run/secrets/collectord/", f"{tmp_path}/")
    for key, value in load_yaml(BASE / "secret.yaml")["stringData"].items():
        (tmp_path / key).write_text(value, encoding="utf-8")
    (tmp_path / "collector.toml").write_text(config, encoding="utf-8")
    args = _statefulset()["spec"]["template"]["spec"]["containers"][0]["args"]
    args = [str(tmp_path / "collector.toml") if a.endswith("collector.toml") else a for a in args]
    args[0] = "check"  # run -> check: the same config and flags, without starting
    args = [a for a in args if a not in ("--log-format", "json")]
    name = _statefulset()["metadata"]["name"]
    env = {**os.environ, "HOSTNAME": f"{name}-1"}
    done = subprocess.run(
        [sys.executable, "-m", "collectord", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"shard {_shard_spec(_statefulset())} (here 1/" in done.stdout


def test_kustomize_renders_the_base_with_a_statefulset_in_place_of_the_deployment() -> None:
    rendered = _rendered()
    status, base = run_tool([require_tool("kubectl"), "kustomize", str(BASE)])
    assert status == 0, base
    base_kinds = sorted(o["kind"] for o in yaml.safe_load_all(base) if o)
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == sorted([k for k in base_kinds if k != "Deployment"] + ["StatefulSet"])
    assert {o["metadata"].get("namespace") for o in rendered if o["kind"] != "Namespace"} == {
        "collectord"
    }
    for obj in rendered:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # the generated ConfigMap's hashed name is what the StatefulSet mounts
    config_map = _one(rendered, "ConfigMap")
    volumes = _one(rendered, "StatefulSet")["spec"]["template"]["spec"]["volumes"]
    assert {"name": config_map["metadata"]["name"]} in [v.get("configMap") for v in volumes]


def test_the_headless_service_and_the_service_monitor_reach_every_replica() -> None:
    rendered = _rendered()
    service = _one(rendered, "Service")
    statefulset = _one(rendered, "StatefulSet")
    monitor = _one(rendered, "ServiceMonitor")
    assert service["metadata"]["name"] == "collectord"  # job="collectord" in the rules
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"  # one endpoint, one DNS address per pod
    assert service["spec"]["publishNotReadyAddresses"] is True
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"]


def test_the_prometheus_scrape_config_finds_every_replica_by_dns() -> None:
    config = load_yaml(SHARDED / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "collectord"
    (dns,) = job["dns_sd_configs"]
    service = load_yaml(BASE / "service.yaml")
    namespace = load_yaml(BASE / "namespace.yaml")["metadata"]["name"]
    assert dns["names"] == [f"{service['metadata']['name']}.{namespace}.svc.cluster.local"]
    container = _statefulset()["spec"]["template"]["spec"]["containers"][0]
    assert dns["port"] in {p["containerPort"] for p in container["ports"]}
    promtool = require_tool("promtool")
    status, output = run_tool([promtool, "check", "config", "prometheus.yml"], cwd=SHARDED)
    assert status == 0, output
