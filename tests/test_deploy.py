"""deploy/: the files no test here can run (Docker, Kubernetes, systemd) agree with the ones that
tests/integration/test_cluster.py runs for real (relay.env, nginx/relay.conf.template)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from relay.config import Settings, load_settings
from relay.store.storage import connect

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def env_file() -> dict[str, str]:
    lines = (DEPLOY / "relay.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def k8s() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())}


def test_the_shared_settings_are_real_settings_and_the_configmap_carries_them() -> None:
    shared = env_file()
    load_settings(shared, config_file="/dev/null")  # fails, naming the key, on a bad value
    assert all(k.startswith("RELAY_") and k[6:].lower() in Settings.__dataclass_fields__ for k in shared)
    data = k8s()["ConfigMap"]["data"]
    assert {k: v for k, v in data.items() if k != "RELAY_REDIS_URL"} == shared
    assert data["RELAY_REDIS_URL"].startswith("redis://")


def test_kubernetes_manifests() -> None:
    docs = k8s()
    listed = set(docs["Kustomization"]["resources"])
    assert listed == {f.name for f in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    deployment = docs["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == 8030
    assert {e["name"]: e.get("value") for e in container["env"]}["RELAY_HOST"] == "0.0.0.0"
    assert container["envFrom"][0]["configMapRef"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    requests = container["resources"]["requests"]
    assert requests["memory"].endswith("Mi") and int(requests["memory"][:-2]) >= 47 + 10_000 * 21 // 1024
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert docs["Service"]["spec"]["selector"] == labels
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    annotations = docs["Ingress"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_compose_runs_three_nodes_on_one_redis_behind_nginx_with_the_tested_template() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    nodes = sorted(name for name in services if name.startswith("relay"))
    assert nodes == ["relay1", "relay2", "relay3"]
    for name in nodes:
        node = services[name]
        assert node["env_file"] == "relay.env" and node["environment"]["RELAY_REDIS_URL"] == "redis://redis:6379/0"
        assert node["build"]["dockerfile"] == "deploy/Dockerfile"
        assert "/readyz" in " ".join(node["healthcheck"]["test"])
    nginx = services["nginx"]
    upstreams = re.findall(r"server (\w+):8030", nginx["environment"]["RELAY_UPSTREAMS"])
    assert upstreams == nodes
    assert "./nginx/relay.conf.template:/etc/nginx/templates/relay.conf.template:ro" in nginx["volumes"]


def test_the_nginx_template_is_set_up_for_server_sent_events() -> None:
    conf = (DEPLOY / "nginx" / "relay.conf.template").read_text()
    directives = {line.strip() for line in conf.splitlines() if not line.strip().startswith("#")}
    for needed in (
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_buffering off;",
        "proxy_read_timeout 1h;",
        "proxy_next_upstream error timeout http_502 http_503;",
        "least_conn;",
        "${RELAY_UPSTREAMS}",
        "listen ${RELAY_LISTEN};",
    ):
        assert needed in directives, needed


def test_the_image_and_the_unit() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("# syntax=docker/dockerfile:1") and "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.M) and "RELAY_HOST=0.0.0.0" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.M)
    unit = (DEPLOY / "systemd" / "relay.service").read_text()
    for needed in ("ExecStart=/opt/relay/bin/relay serve", "EnvironmentFile=/etc/relay/relay.env", "KillSignal=SIGTERM",
                   "LimitNOFILE=65536", "User=relay"):  # fmt: skip
        assert needed in unit.splitlines(), needed


def test_local_cluster_explains_itself() -> None:
    done = subprocess.run([sys.executable, str(DEPLOY / "local-cluster"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "restart-node" in done.stdout


def test_tls_settings_reach_the_redis_connections() -> None:
    settings = Settings(redis_tls_ca_file="/etc/relay/ca.pem", redis_tls_cert_file="/c.pem", redis_tls_key_file="/k")
    plain = connect(settings, "rediss://redis.example:6380/0").connection_pool.make_connection()
    sentinel = connect(settings, "rediss+sentinel://s1:26379,s2:26379/mymaster")
    managed = sentinel.connection_pool.make_connection()
    for conn in (plain, managed):
        assert (conn.ssl_context.ca_certs, conn.ssl_context.certfile, conn.ssl_context.keyfile) == (  # type: ignore[attr-defined]
            "/etc/relay/ca.pem", "/c.pem", "/k",
        )  # fmt: skip
    for client in sentinel.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
        assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/relay/ca.pem"
    assert not hasattr(connect(settings, "redis://r:6379/0").connection_pool.make_connection(), "ssl_context")
