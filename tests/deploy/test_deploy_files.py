"""The deploy files are valid: Kubernetes manifests against the Kubernetes schemas, and every path, command and
setting they name exists in the application."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.urls import Resolver404, resolve

from lynkr_site.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
K8S_VERSION = "1.33.0"


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    template = spec.get("template") or {}
    return list((template.get("spec") or {}).get("containers", []))


@pytest.mark.parametrize("path", K8S, ids=[p.name for p in K8S])
def test_kubernetes_manifest_is_valid(path: Path) -> None:
    for doc in _documents(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_lynkr_command_and_probe_exists() -> None:
    parser = build_parser()
    probes = []
    for path in K8S:
        for doc in _documents(path):
            for container in _containers(doc):
                command = container.get("command") or []
                if command and command[0] == "lynkr":
                    parser.parse_args(command[1:])  # exits (fails the test) on an unknown subcommand or flag
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe in container:
                        probes.append(container[probe]["httpGet"]["path"])
    assert sorted(probes) == ["/health/live", "/health/ready"]
    for probe in probes:
        resolve(probe)


def test_web_pod_gives_streams_time_to_drain() -> None:
    [web] = _documents(DEPLOY / "k8s" / "web-deployment.yaml")
    config = _documents(DEPLOY / "k8s" / "configmap.yaml")[0]["data"]
    drain_seconds = int(config["GRACEFUL_SHUTDOWN_TIMEOUT"]) / 1000
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain_seconds


def test_compose_services_and_commands() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    parser = build_parser()
    for name in ("migrate", "web", "worker", "beat"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["command"][0] == "lynkr"
        parser.parse_args(service["command"][1:])
    assert services["web"]["ports"] == ["127.0.0.1:8080:8080"]  # not published on every interface by default


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER lynkr" in text and "HEALTHCHECK" in text
    resolve("/health/live")


def test_prometheus_scrapes_the_metrics_route() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    paths = {job["metrics_path"] for job in config["scrape_configs"]}
    assert paths == {"/metrics/prometheus"}
    try:
        resolve("/metrics/prometheus")
    except Resolver404:
        pytest.fail("the metrics route the scrape config names does not exist")


def test_grafana_dashboard_queries_only_metrics_we_export() -> None:
    import json
    import re

    from prometheus_client import REGISTRY

    import gateway.metrics  # noqa: F401  (registers the lynkr_ metrics)

    exported: set[str] = set()
    for family in REGISTRY.collect():
        exported |= {sample.name for sample in family.samples}
        exported.add(family.name)
    dashboard = json.loads((DEPLOY / "grafana" / "lynkr-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\blynkr_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    # Histograms export _bucket series only once observed; compare against the declared families' series names.
    declared = exported | {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    missing = sorted(queried - declared)
    assert not missing, f"dashboard queries metrics Lynkr does not export: {missing}"
    assert {"lynkr_requests_total", "lynkr_request_duration_seconds_bucket", "lynkr_circuit_breaker_state"} <= queried
