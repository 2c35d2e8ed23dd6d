"""Many nodes on one Redis behind nginx, as `deploy/local-cluster` runs them: Redis, three relay
nodes and nginx (Debian's) on 127.0.0.1, with deploy/nginx/relay.conf.template. SDKs connect
through nginx only; each node's own /status says which node holds which stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ldclient
import pytest
from ldclient.config import Config
from ldclient.context import Context as SDKContext

from relay.store.writes import WritePath
from tests.integration.helpers import b64, eventually, storage_for
from tests.integration.sse import EventStream

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "local-cluster"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does): the cluster tests need it"
)

KILL_SWITCH = "checkout-kill-switch"
USER = {"kind": "user", "key": "ann", "userType": "pro"}


class LocalCluster:
    """Drives deploy/local-cluster, exactly as an operator would."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.state: dict[str, Any] = {}

    def run(self, *args: str, timeout: float = 60) -> str:
        env = {**os.environ, "NGINX": NGINX or "", "RELAY_PYTHON": sys.executable}
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--dir", str(self.dir)],
            capture_output=True, text=True, timeout=timeout, env=env,
        )  # fmt: skip
        assert done.returncode == 0, f"local-cluster {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        self.state = json.loads((self.dir / "cluster.json").read_text())
        return done.stdout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state['port']}"

    @property
    def node_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{n['port']}" for n in self.state["nodes"]]

    def secrets(self) -> dict[str, str]:
        return json.loads((self.dir / "demo-credentials.json").read_text())  # type: ignore[no-any-return]

    def status(self, node: int) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.node_urls[node]}/status", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def connections(self, kind: str = "server_all", nodes: list[int] | None = None) -> list[int]:
        nodes = list(range(len(self.node_urls))) if nodes is None else nodes
        return [self.status(i)["environments"]["demo"]["connections"][kind] for i in nodes]

    def versions(self) -> list[int]:
        return [self.status(i)["environments"]["demo"]["version"] for i in range(len(self.node_urls))]

    def kill_leftovers(self) -> None:
        """After `stop`, or if it failed: nothing this test started may outlive it."""
        state_file = self.dir / "cluster.json"
        if not state_file.exists():
            return
        state = json.loads(state_file.read_text())
        for pid in [state["nginx"]["pid"], *(n["pid"] for n in state["nodes"]), state["redis"]["pid"]]:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        out = c.run("start", "--free-ports")
        assert c.url in out and "demo-credentials.json" in out
        yield c
    finally:
        try:
            c.run("stop")
        finally:
            c.kill_leftovers()


def redis_version(url: str) -> int:
    async def read() -> int:
        storage = storage_for(url)
        try:
            return int(await storage.client.get("relay:demo:version"))
        finally:
            await storage.close()

    return asyncio.run(read())


async def open_stream(http: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None) -> EventStream:
    response = await http.send(http.build_request("GET", path, headers=headers), stream=True)
    assert response.status_code == 200, response.status_code
    return EventStream(response)


def test_a_change_reaches_streams_on_every_node(cluster: LocalCluster) -> None:
    secrets = cluster.secrets()
    auth = {"Authorization": secrets["sdk_key"]}

    async def scenario() -> None:
        admin = WritePath(storage_for(cluster.state["redis_url"]), actor="test")
        async with httpx.AsyncClient(base_url=cluster.url, timeout=10) as http:
            server = [await open_stream(http, "/all", auth) for _ in range(6)]
            contexts = [{"kind": "user", "key": f"u{i}"} for i in range(3)]
            browser = [await open_stream(http, f"/eval/{secrets['client_side_id']}/{b64(c)}") for c in contexts]
            for s in server:
                name, put = await s.next()
                assert name == "put" and put["data"]["flags"][KILL_SWITCH]["on"] is True
            for s in browser:
                name, put = await s.next()
                assert name == "put" and put[KILL_SWITCH]["value"] is True
            # least_conn over three nodes: the streams are spread, every node holds some.
            server_counts, client_counts = cluster.connections(), cluster.connections("client")
            assert sum(server_counts) == 6 and min(server_counts) >= 1, server_counts
            assert sum(client_counts) == 3, client_counts

            await admin.toggle("demo", KILL_SWITCH, False, comment="cluster test")
            for s in server:
                name, patch = await s.next()
                assert name == "patch" and patch["path"] == f"/flags/{KILL_SWITCH}" and patch["data"]["on"] is False
            for s in browser:
                name, patch = await s.next()
                assert name == "patch" and patch["key"] == KILL_SWITCH and patch["value"] is False
            await admin.toggle("demo", KILL_SWITCH, True)
            for s in server:
                assert (await s.next())[1]["data"]["on"] is True
            for s in [*server, *browser]:
                await s.response.aclose()
        await admin.storage.close()

    asyncio.run(scenario())
    expected = redis_version(cluster.state["redis_url"])
    assert cluster.versions() == [expected] * 3


def _sdk_client(url: str, sdk_key: str) -> ldclient.LDClient:
    config = Config(
        sdk_key, base_uri=url, stream_uri=url, events_uri=url, send_events=False, initial_reconnect_delay=0.3
    )
    client = ldclient.LDClient(config, start_wait=10)
    assert client.is_initialized()
    return client


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_killed_node_s_sdks_reconnect_to_another_and_end_with_the_same_flags(cluster: LocalCluster) -> None:
    """The real LaunchDarkly server SDK, through nginx; one node is SIGKILLed (no goodbye)."""
    secrets = cluster.secrets()
    clients = [_sdk_client(cluster.url, secrets["sdk_key"]) for _ in range(6)]
    user = SDKContext.from_dict(USER)
    try:
        counts = cluster.connections()
        assert sum(counts) == 6 and min(counts) >= 1, counts
        victim = max(range(3), key=lambda i: counts[i])
        cluster.run("stop-node", str(victim + 1), "--kill")

        async def writes() -> None:
            admin = WritePath(storage_for(cluster.state["redis_url"]), actor="test")
            await admin.toggle("demo", KILL_SWITCH, False, comment="while a node is down")
            await admin.toggle("demo", "new-search", False)
            await admin.storage.close()

        asyncio.run(writes())
        _wait(lambda: all(c.variation(KILL_SWITCH, user, None) is False for c in clients), 15, "every SDK to see it")
        _wait(lambda: all(c.variation("new-search", user, None) is False for c in clients), 5, "the second change")
        # Every SDK ends with the same flags: the same values and flag versions for this context.
        states = [json.dumps(c.all_flags_state(user).to_json_dict(), sort_keys=True) for c in clients]
        assert len(set(states)) == 1
        # ...and the ones that were on the killed node now stream from the other two.
        live = [i for i in range(3) if i != victim]
        _wait(lambda: sum(cluster.connections(nodes=live)) == 6, 10, "all six streams on live nodes")
    finally:
        for c in clients:
            c.close()
    cluster.run("start-node", str(victim + 1))
    assert len(set(cluster.versions())) == 1

    async def restore() -> None:
        admin = WritePath(storage_for(cluster.state["redis_url"]), actor="test")
        await admin.toggle("demo", KILL_SWITCH, True)
        await admin.toggle("demo", "new-search", True)
        await admin.storage.close()

    asyncio.run(restore())


class Reader:
    """A raw SSE client that behaves like an SDK: keeps the flags from put/patch/delete and
    reconnects (through nginx, so to whichever node) whenever its stream ends or fails."""

    def __init__(self, http: httpx.AsyncClient, sdk_key: str) -> None:
        self.http = http
        self.sdk_key = sdk_key
        self.flags: dict[str, dict[str, Any]] = {}
        self.connects = 0
        self.stopping = False

    async def run(self) -> None:
        while not self.stopping:
            try:
                stream = await open_stream(self.http, "/all", {"Authorization": self.sdk_key})
                self.connects += 1
                try:
                    while not self.stopping:
                        try:
                            name, data = await stream.next(timeout=0.5)
                        except TimeoutError:
                            continue
                        self._apply(name, data)
                finally:
                    await stream.response.aclose()
            except (httpx.HTTPError, EOFError, AssertionError):
                pass
            if not self.stopping:
                await asyncio.sleep(random.uniform(0.2, 0.4))  # an SDK's reconnect delay, jittered

    def _apply(self, name: str, data: Any) -> None:
        if name == "put":
            self.flags = dict(data["data"]["flags"])
        elif name == "patch" and data["path"].startswith("/flags/"):
            key = data["path"][len("/flags/") :]
            if data["data"]["version"] > self.flags.get(key, {}).get("version", 0):
                self.flags[key] = data["data"]
        elif name == "delete" and data["path"].startswith("/flags/"):
            self.flags.pop(data["path"][len("/flags/") :], None)

    def view(self) -> dict[str, tuple[int, Any]]:
        return {k: (f["version"], f.get("on")) for k, f in self.flags.items() if not f.get("deleted")}


def test_a_rolling_restart_loses_no_change(cluster: LocalCluster) -> None:
    """Each node in turn: SIGTERM (it ends its streams), start, wait for /readyz; flags change all
    along. At the end every stream and every node holds Redis's flags and data version."""
    secrets = cluster.secrets()
    url = cluster.state["redis_url"]

    async def scenario() -> int:
        admin = WritePath(storage_for(url), actor="rolling")
        await admin.put_item("demo", "flag", {"key": "counter", "on": True, "variations": [0], "offVariation": 0,
                                              "fallthrough": {"variation": 0}})  # fmt: skip
        writes = 0
        async with httpx.AsyncClient(base_url=cluster.url, timeout=httpx.Timeout(10, read=None)) as http:
            readers = [Reader(http, secrets["sdk_key"]) for _ in range(6)]
            tasks = [asyncio.create_task(r.run()) for r in readers]
            await eventually(lambda: all("counter" in r.flags for r in readers), 10, "every reader's put")
            restarting = asyncio.create_task(asyncio.to_thread(_roll, cluster))
            while not restarting.done():
                writes += 1
                await admin.toggle("demo", KILL_SWITCH, writes % 2 == 0)
                await admin.put_item("demo", "flag", {"key": "counter", "on": True, "variations": [writes],
                                                      "offVariation": 0, "fallthrough": {"variation": 0}})  # fmt: skip
                await asyncio.sleep(0.05)
            await restarting  # re-raises a failed restart
            expected = {k: (f["version"], f.get("on")) for k, f in (await admin.export("demo"))["flags"].items()}
            try:
                await eventually(lambda: all(r.view() == expected for r in readers), 15, "every reader to agree")
            finally:
                for r in readers:
                    r.stopping = True
                await asyncio.gather(*tasks)
            assert all(r.flags["counter"]["variations"] == [writes] for r in readers)
            # Every stream was on a node that restarted, so every reader reconnected at least once.
            assert all(r.connects >= 2 for r in readers), [r.connects for r in readers]
        await admin.storage.close()
        return writes

    writes = asyncio.run(scenario())
    assert writes >= 10  # changes kept coming during the whole roll
    expected_version = redis_version(url)
    _wait(lambda: cluster.versions() == [expected_version] * 3, 10, "every node at Redis's data version")


def _roll(cluster: LocalCluster) -> None:
    for node in ("1", "2", "3"):
        cluster.run("restart-node", node)
        time.sleep(0.3)  # let the reconnected streams settle before the next node goes
