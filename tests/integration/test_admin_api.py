"""The admin API of real `relay serve` processes: a kill switch by PATCH reaching a real LaunchDarkly SDK, a
revoked token refused on two nodes within a second, no token in plain text in Redis or the logs, the ops
routes moved off the SDK port, and a node that will not start without its admin port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ldclient
import pytest
import redis as redis_client
from ldclient.config import Config
from ldclient.context import Context as SDKContext

from tests.admin.conftest import break_glass_token
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer, free_port
from tests.integration.relay_process import RelayProcess

KILL = "/api/v1/environments/prod/flags/checkout-kill-switch"


@dataclass
class Nodes:
    first: RelayProcess
    second: RelayProcess
    root: str  # a break-glass admin token
    sdk_key: str  # prod's


@pytest.fixture
def nodes(redis_server: RedisServer, tmp_path: Path) -> Iterator[Nodes]:
    secrets = demo_environment(redis_server.url)
    root = break_glass_token(redis_server.url)
    started = [RelayProcess(redis_server.url, tmp_path / f"n{i}", access_log="true").start() for i in range(2)]
    yield Nodes(started[0], started[1], root, secrets["sdk_key"])
    for node in started:
        node.stop()


def call(node: RelayProcess, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.request(method, node.admin_url + path, headers=headers, timeout=10, **kwargs)


def wait_for(check: Any, timeout: float = 10, step: float = 0.005) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(step)
    return time.monotonic() - start


def test_a_kill_switch_by_merge_patch_reaches_a_real_sdk_within_a_second(nodes: Nodes) -> None:
    made = call(nodes.first, "POST", "/api/v1/tokens", nodes.root, json={"name": "ann", "role": "writer",
                                                                          "envs": ["prod"]})  # fmt: skip
    ann, ann_id = made.json()["token"], made.json()["id"]
    second = nodes.second  # the SDK on the other node: the change travels through Redis
    config = Config(nodes.sdk_key, base_uri=second.url, stream_uri=second.url, events_uri=second.url,
                    send_events=False)  # fmt: skip
    client = ldclient.LDClient(config, start_wait=10)
    try:
        assert client.is_initialized()
        user = SDKContext.from_dict({"kind": "user", "key": "u1"})
        assert client.variation("checkout-kill-switch", user, None) is True
        sent = time.monotonic()
        r = call(nodes.first, "PATCH", KILL, ann, headers={"Content-Type": "application/merge-patch+json"},
                 json={"on": False, "comment": "incident 12"})  # fmt: skip
        assert r.status_code == 200, r.text
        wait_for(lambda: client.variation("checkout-kill-switch", user, None) is False, timeout=5)
        assert time.monotonic() - sent < 1.0
    finally:
        client.close()
    entry = call(second, "GET", "/api/v1/environments/prod/audit", nodes.root, params={"limit": 1}).json()
    first_entry = entry["entries"][0]
    assert (first_entry["actor"], first_entry["token"], first_entry["via"]) == ("ann", ann_id, "api")
    assert first_entry["action"] == "toggle" and first_entry["comment"] == "incident 12"


def test_a_revoked_token_fails_on_both_nodes_within_a_second(nodes: Nodes) -> None:
    first, second, root = nodes.first, nodes.second, nodes.root
    token = call(first, "POST", "/api/v1/tokens", root, json={"name": "bob", "role": "reader"}).json()
    for node in (first, second):  # cached on both
        assert call(node, "GET", "/api/v1/environments/prod/flags", token["token"]).status_code == 200
    assert call(second, "DELETE", f"/api/v1/tokens/{token['id']}", root).status_code == 200
    revoked = time.monotonic()
    for node in (first, second):
        wait_for(lambda n=node: call(n, "GET", "/api/v1/environments/prod/flags", token["token"]).status_code == 401)
    assert time.monotonic() - revoked < 1.0


def test_no_token_in_plain_text_in_redis_or_the_logs(nodes: Nodes, redis_server: RedisServer) -> None:
    first, second, root = nodes.first, nodes.second, nodes.root
    made = call(first, "POST", "/api/v1/tokens", root, json={"name": "cat", "role": "admin"}).json()
    rotated = call(first, "POST", f"/api/v1/tokens/{made['id']}/rotate", made["token"]).json()
    tokens = [root, made["token"], rotated["token"]]
    for token in tokens:  # failed and successful uses, both logged
        call(second, "GET", "/api/v1/tokens", token)
        call(second, "GET", "/api/v1/tokens", token + "x")
    call(first, "PATCH", KILL, rotated["token"], headers={"Content-Type": "application/merge-patch+json"},
         json={"on": False})  # fmt: skip
    client = redis_client.Redis.from_url(redis_server.url)
    try:
        dump = []
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                dump.append(client.get(key))
            elif kind == "hash":
                dump += [b"%s=%s" % kv for kv in client.hgetall(key).items()]
            elif kind == "stream":
                dump += [repr(e).encode() for e in client.xrange(key)]
            dump.append(key)
    finally:
        client.close()
    redis_text = b"\n".join(d or b"" for d in dump)
    logs = first.log.read_bytes() + second.log.read_bytes()
    assert b"/api/v1/tokens" in logs  # the access log is on: requests are there, their tokens are not
    for token in tokens:
        secret = token.encode()
        assert secret not in redis_text and secret not in logs
        assert secret[len("relay_pat_") : -6] not in redis_text + logs  # nor its secret part alone


def test_ops_routes_can_leave_the_sdk_port(redis_server: RedisServer, tmp_path: Path) -> None:
    demo_environment(redis_server.url)
    node = RelayProcess(redis_server.url, tmp_path / "n", sdk_port_ops="false").start()
    try:
        assert httpx.get(node.url + "/status").status_code == 404
        assert httpx.get(node.url + "/metrics").status_code == 404
        assert httpx.get(node.url + "/readyz").status_code == 200
        status = httpx.get(node.admin_url + "/status").json()
        assert status["environments"]["prod"]["ready"] is True and status["admin"]["token_changes_subscribed"]
        assert "relay_data_version" in httpx.get(node.admin_url + "/metrics").text
        doc = httpx.get(node.admin_url + "/openapi.json").json()
        assert "/api/v1/tokens" in doc["paths"]
    finally:
        node.stop()


def test_no_admin_listener_when_disabled_and_no_node_without_its_port(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    demo_environment(redis_server.url)
    node = RelayProcess(redis_server.url, tmp_path / "off", admin_listen="").start()
    try:
        with pytest.raises(httpx.ConnectError):
            httpx.get(node.admin_url + "/status")
        assert httpx.get(node.url + "/status").status_code == 200
    finally:
        node.stop()
    taken = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        env = {"RELAY_REDIS_URL": redis_server.url, "RELAY_PORT": str(free_port()), "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-m", "relay", "serve", "--admin-port", str(taken)], env=env,
                              cwd=tmp_path, capture_output=True, timeout=30)  # fmt: skip
    assert done.returncode != 0
    assert done.returncode == 7  # relay's "cannot listen", checked before anything starts
    assert b"is in use" in done.stderr and b"--admin-port or RELAY_ADMIN_LISTEN" in done.stderr, done.stderr
