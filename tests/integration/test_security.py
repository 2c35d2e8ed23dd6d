"""Security against a real node: what each credential can reach, secure mode with the real
LaunchDarkly hash, key rotation while streams are open, and no secret in logs or in Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from click.testing import CliRunner
from ldclient import Config, Context, LDClient

from relay.access.sealing import Sealer
from relay.cli import main
from relay.cli.demo import demo_document
from relay.store.writes import WritePath
from tests.integration.helpers import b64, run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess
from tests.integration.sse import EventStream

SECRET = "test-secret-key-0123456789abcdefghijklmnop"
SERVER_ONLY = "internal-debug-panel"  # the demo's flag not available to client-side SDKs
STUDENT = {"kind": "user", "key": "zed", "userType": "student", "email": "zed@example.com"}
CONTEXTS = [
    STUDENT,
    {"kind": "org", "key": "acme:eu%1", "name": "Acme"},  # ":" and "%" are escaped in the hash input
    {"kind": "multi", "user": {"key": "ann"}, "org": {"key": "o:1"}, "device": {"key": "d%"}},
    {"key": "old-style", "custom": {"userType": "student"}},
]
SERVER_ROUTES = ["/all", "/flags", "/sdk/latest-all", "/sdk/latest-flags", "/sdk/latest-flags/new-search",
                 "/sdk/latest-segments/beta-testers"]  # fmt: skip


def ld_hash(sdk_key: str, ctx: dict[str, Any]) -> str:
    """What an application's server gives its page: the real SDK's secure_mode_hash."""
    client = LDClient(Config(sdk_key, offline=True))
    try:
        data = ctx if "kind" in ctx else {"kind": "user", "key": ctx["key"]}
        return client.secure_mode_hash(Context.from_dict(data))
    finally:
        client.close()


def cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, args, env={"RELAY_ACTOR": "sec-test", **env}, input=stdin)


def new_demo_env(url: str, env: str, *, secure: bool = False, sealed: bool = True) -> dict[str, str]:
    async def setup() -> dict[str, str]:
        admin = WritePath(storage_for(url), actor="test", sealer=Sealer(SECRET) if sealed else None)
        _, secrets = await admin.create_environment(env, secure_mode=secure)
        await admin.import_items(env, demo_document())
        return secrets

    return run_async(setup())


def wait_loaded(http: httpx.Client, sdk_key: str) -> None:
    deadline = time.monotonic() + 10
    while http.get("/sdk/latest-all", headers={"Authorization": sdk_key}).status_code != 200:
        assert time.monotonic() < deadline, "the node never loaded the environment"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayProcess, RedisServer]]:
    tmp = tmp_path_factory.mktemp("security")
    redis = RedisServer(tmp / "redis").start()
    relay = RelayProcess(redis.url, tmp / "relay", secret_key=SECRET).start()
    yield relay, redis
    relay.stop()
    redis.stop()


# --- what the client-side ID and the mobile key can reach ---------------------------------------


def test_a_server_only_flag_never_reaches_a_client_side_id_route(node: tuple[RelayProcess, RedisServer]) -> None:
    relay, redis = node
    secrets = new_demo_env(redis.url, "matrix")
    env_id = secrets["client_side_id"]

    async def scenario() -> None:
        admin = WritePath(storage_for(redis.url), actor="test")
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:
            while (await http.get("/sdk/latest-all", headers={"Authorization": secrets["sdk_key"]})).status_code != 200:
                await asyncio.sleep(0.01)

            async def evalx_bodies() -> list[dict[str, Any]]:
                bodies = []
                for suffix in ("", "?withReasons=true"):
                    for path in (
                        f"/sdk/evalx/{env_id}/contexts/{b64(STUDENT)}",
                        f"/sdk/evalx/{env_id}/users/{b64(STUDENT)}",
                    ):
                        bodies.append((await http.get(path + suffix)).json())
                    for path in ("context", "contexts", "user"):
                        bodies.append(
                            (await http.request("REPORT", f"/sdk/evalx/{env_id}/{path}{suffix}", json=STUDENT)).json()
                        )
                return bodies

            async def ofrep(key: str | None = None) -> httpx.Response:
                path = "/ofrep/v1/evaluate/flags" + (f"/{key}" if key else "")
                body = {"context": {"targetingKey": "zed", "email": "zed@example.com"}}
                return await http.post(path, json=body, headers={"Authorization": f"Bearer {env_id}"})

            # The server-only flag exists and is on for this context: the SDK key sees it.
            assert (await http.get("/sdk/latest-flags", headers={"Authorization": secrets["sdk_key"]})).json()[
                SERVER_ONLY
            ]
            bodies = await evalx_bodies()
            assert all(b and "new-search" in b and SERVER_ONLY not in b for b in bodies), bodies
            bulk = (await ofrep()).json()
            assert {f["key"] for f in bulk["flags"]} and SERVER_ONLY not in {f["key"] for f in bulk["flags"]}
            single = await ofrep(SERVER_ONLY)
            assert single.status_code == 404 and single.json()["errorCode"] == "FLAG_NOT_FOUND"
            assert (await ofrep("new-search")).status_code == 200
            goals = await http.get(f"/sdk/goals/{env_id}")
            assert goals.json() == []

            streams = [
                EventStream(await http.send(http.build_request("GET", f"/eval/{env_id}/{b64(STUDENT)}"), stream=True)),
                EventStream(
                    await http.send(http.build_request("REPORT", f"/eval/{env_id}", json=STUDENT), stream=True)
                ),
            ]
            ping = EventStream(await http.send(http.build_request("GET", f"/ping/{env_id}"), stream=True))
            for s in streams:
                name, put = await s.next()
                assert name == "put" and "new-search" in put and SERVER_ONLY not in put
            assert await ping.next() == ("ping", "")

            # A change to the server-only flag, then a new server-only flag: nothing reaches browsers;
            # the next event they get is the client-side flag changed after both.
            await admin.toggle("matrix", SERVER_ONLY, False)
            hidden = simple_flag("secret-new", clientSideAvailability={"usingEnvironmentId": False})
            await admin.put_item("matrix", "flag", hidden)
            await admin.toggle("matrix", "checkout-kill-switch", False)
            for s in streams:
                name, data = await s.next()
                assert name == "patch" and data["key"] == "checkout-kill-switch", (name, data)
            # A client-side flag made server-only is deleted from browsers' state, not patched.
            flag = await admin.get_item("matrix", "flag", "new-search")
            await admin.put_item("matrix", "flag", {**flag, "clientSideAvailability": {"usingEnvironmentId": False}})
            for s in streams:
                assert await s.next() == ("delete", {"key": "new-search", "version": 2})
            for _ in range(4):  # one ping per change, never any flag data
                assert await ping.next() == ("ping", "")
            for body in await evalx_bodies():
                assert not {SERVER_ONLY, "secret-new", "new-search"} & set(body), body
            assert not {SERVER_ONLY, "secret-new", "new-search"} & {f["key"] for f in (await ofrep()).json()["flags"]}
            for key in (SERVER_ONLY, "secret-new", "new-search"):
                assert (await ofrep(key)).status_code == 404
            for s in [*streams, ping]:
                await s.response.aclose()

    run_async(scenario())


@pytest.mark.parametrize("route", SERVER_ROUTES)
@pytest.mark.parametrize("scheme", ["{}", "api_key {}", "Bearer {}"])
def test_server_side_routes_refuse_the_client_side_id_and_the_mobile_key(
    node: tuple[RelayProcess, RedisServer], route: str, scheme: str
) -> None:
    relay, redis = node
    secrets = _shared_env(redis)
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        wait_loaded(http, secrets["sdk_key"])
        for credential in (secrets["client_side_id"], secrets["mobile_key"]):
            got = http.get(route, headers={"Authorization": scheme.format(credential)})
            assert got.status_code == 401 and got.json()["code"] == "unauthorized", (credential, got.text)
        with http.stream("GET", route, headers={"Authorization": scheme.format(secrets["sdk_key"])}) as ok:
            assert ok.status_code == 200


@pytest.mark.parametrize(
    ("method", "route"),
    [("GET", "/msdk/evalx/contexts/{ctx}"), ("GET", "/msdk/evalx/users/{ctx}"), ("REPORT", "/msdk/evalx/context"),
     ("REPORT", "/msdk/evalx/user"), ("GET", "/meval/{ctx}"), ("REPORT", "/meval"), ("GET", "/mping")],
)  # fmt: skip
def test_mobile_routes_refuse_the_sdk_key_and_the_client_side_id(
    node: tuple[RelayProcess, RedisServer], method: str, route: str
) -> None:
    relay, redis = node
    secrets = _shared_env(redis)
    path = route.format(ctx=b64(STUDENT))
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        wait_loaded(http, secrets["sdk_key"])
        for credential in (secrets["sdk_key"], secrets["client_side_id"]):
            got = http.request(method, path, json=STUDENT, headers={"Authorization": f"api_key {credential}"})
            assert got.status_code == 401 and got.json()["code"] == "unauthorized"
        with http.stream(
            method, path, json=STUDENT, headers={"Authorization": f"api_key {secrets['mobile_key']}"}
        ) as ok:
            assert ok.status_code == 200


_SHARED: dict[str, dict[str, str]] = {}


def _shared_env(redis: RedisServer) -> dict[str, str]:
    if redis.url not in _SHARED:
        _SHARED[redis.url] = new_demo_env(redis.url, "shared")
    return _SHARED[redis.url]


# --- secure mode ------------------------------------------------------------------------------------


def test_secure_mode_accepts_exactly_the_ld_sdk_hash_on_every_browser_route(
    node: tuple[RelayProcess, RedisServer],
) -> None:
    relay, redis = node
    secrets = new_demo_env(redis.url, "secure", secure=True)
    other = _shared_env(redis)
    env_id, sdk_key = secrets["client_side_id"], secrets["sdk_key"]
    origin = {"Origin": "https://app.example"}
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        wait_loaded(http, sdk_key)
        for ctx in CONTEXTS:
            h = ld_hash(sdk_key, ctx)
            requests = [
                ("GET", f"/sdk/evalx/{env_id}/contexts/{b64(ctx)}"),
                ("GET", f"/sdk/evalx/{env_id}/users/{b64(ctx)}"),
                ("REPORT", f"/sdk/evalx/{env_id}/context"),
                ("REPORT", f"/sdk/evalx/{env_id}/contexts"),
                ("REPORT", f"/sdk/evalx/{env_id}/user"),
                ("GET", f"/eval/{env_id}/{b64(ctx)}"),
                ("REPORT", f"/eval/{env_id}"),
            ]
            for method, path in requests:
                with http.stream(method, f"{path}?h={h}&withReasons=true", json=ctx, headers=origin) as ok:
                    assert ok.status_code == 200, (method, path, ctx)
                    if path.startswith("/eval/"):
                        assert next(ok.iter_lines()) == "event: put"
                # Served once with the right hash (so now cached): still refused without it or with a wrong one.
                wrong = [
                    "",
                    "?h=",
                    f"?h={ld_hash(sdk_key, {'kind': 'user', 'key': 'someone-else'})}",
                    f"?h={ld_hash(other['sdk_key'], ctx)}",
                    f"?h={h[:-1]}",
                ]
                for query in wrong:
                    got = http.request(method, path + query, json=ctx, headers=origin)
                    assert got.status_code == 400, (method, path, query, got.text)
                    assert got.json()["code"] == "invalid_secure_mode_hash"
                    assert got.headers["access-control-allow-origin"] == "https://app.example"
        assert http.get(f"/sdk/evalx/{env_id}/contexts/{b64(STUDENT)}?h={ld_hash(sdk_key, STUDENT).upper()}").is_success
        # Routes without a context are unaffected; OFREP has no place for the hash, so the client-side
        # ID is refused there while the SDK key still works.
        assert http.get(f"/sdk/goals/{env_id}").json() == []
        with http.stream("GET", f"/ping/{env_id}") as ping:
            assert ping.status_code == 200
        body = {"context": {"targetingKey": "zed"}}
        refused = http.post("/ofrep/v1/evaluate/flags", json=body, headers={"Authorization": f"Bearer {env_id}"})
        assert refused.status_code == 403 and "secure mode" in refused.json()["errorDetails"]
        assert http.post(
            "/ofrep/v1/evaluate/flags", json=body, headers={"Authorization": f"Bearer {sdk_key}"}
        ).is_success
        # Another environment without secure mode needs no hash.
        assert http.get(f"/sdk/evalx/{other['client_side_id']}/contexts/{b64(STUDENT)}").is_success


def test_secure_mode_through_rotation_and_the_cli(node: tuple[RelayProcess, RedisServer], tmp_path: Path) -> None:
    relay, redis = node
    env = {"RELAY_REDIS_URL": redis.url}
    # Without the secret key, the CLI refuses clearly and changes nothing.
    for args in (["env", "create", "sm", "--secure-mode"], ["env", "secure-mode", "shared", "on"]):
        _shared_env(redis)
        refused = cli(args, env)
        assert refused.exit_code == 2 and "RELAY_SECRET_KEY" in refused.output, refused.output
    with_secret = {**env, "RELAY_SECRET_KEY": SECRET}
    created = cli(["env", "create", "sm", "--json"], env)  # made without the secret: its key is not sealed
    keys = json.loads(created.output)
    not_sealed = cli(["env", "secure-mode", "sm", "on"], with_secret)
    assert not_sealed.exit_code == 2 and "--sdk-key-stdin" in not_sealed.output
    assert cli(["env", "secure-mode", "sm", "on", "--sdk-key-stdin"], with_secret, "sdk-wrong\n").exit_code == 2
    on = cli(["env", "secure-mode", "sm", "on", "--sdk-key-stdin"], with_secret, keys["sdk_key"] + "\n")
    assert on.exit_code == 0 and keys["sdk_key"] not in on.output, on.output
    listed = cli(["env", "list", "--json"], env)
    assert next(e for e in json.loads(listed.output) if e["key"] == "sm")["secure_mode"] is True
    no_secret_rotate = cli(["env", "rotate-key", "sm", "--sdk"], env)
    assert no_secret_rotate.exit_code == 2 and "RELAY_SECRET_KEY" in no_secret_rotate.output

    env_id, old_key = keys["client_side_id"], keys["sdk_key"]

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:
            while (await http.get("/sdk/latest-all", headers={"Authorization": old_key})).status_code != 200:
                await asyncio.sleep(0.01)
            ctx = {"kind": "user", "key": "sam"}
            old_h = ld_hash(old_key, ctx)
            url = f"/sdk/evalx/{env_id}/contexts/{b64(ctx)}?h="
            while (await http.get(url + old_h)).status_code != 200:  # the node has seen secure mode turned on
                await asyncio.sleep(0.01)
            assert (await http.get(url)).status_code == 400
            stream = EventStream(
                await http.send(http.build_request("GET", f"/eval/{env_id}/{b64(ctx)}?h={old_h}"), stream=True)
            )
            assert (await stream.next())[0] == "put"

            rotated = await asyncio.to_thread(
                cli, ["env", "rotate-key", "sm", "--sdk", "--grace", "2s", "--json"], with_secret
            )
            assert rotated.exit_code == 0, rotated.output
            rotated_at = time.monotonic()
            new_key = json.loads(rotated.output)["sdk_key"]
            new_h = ld_hash(new_key, ctx)
            while (await http.get(url + new_h)).status_code != 200:
                await asyncio.sleep(0.01)
            assert (await http.get(url + old_h)).status_code == 200  # grace: old hashes still pass
            assert time.monotonic() - rotated_at < 2
            await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - rotated_at)))
            assert (await http.get(url + old_h)).status_code == 400
            assert (await http.get(url + new_h)).status_code == 200
            with pytest.raises(EOFError):  # the stream opened with the old key's hash is ended
                await stream.next(timeout=3)

    run_async(scenario())


def test_a_node_without_the_secret_key_refuses_secure_mode_requests(
    node: tuple[RelayProcess, RedisServer], tmp_path: Path
) -> None:
    _, redis = node
    secrets = new_demo_env(redis.url, "secure-elsewhere", secure=True)
    keyless = RelayProcess(redis.url, tmp_path / "keyless").start()
    try:
        with httpx.Client(base_url=keyless.url, timeout=10) as http:
            wait_loaded(http, secrets["sdk_key"])
            h = ld_hash(secrets["sdk_key"], STUDENT)
            for _ in range(3):
                got = http.get(f"/sdk/evalx/{secrets['client_side_id']}/contexts/{b64(STUDENT)}?h={h}")
                assert got.status_code == 503 and got.json()["code"] == "secure_mode_unavailable"
                got = http.get(f"/eval/{secrets['client_side_id']}/{b64(STUDENT)}?h={h}")
                assert got.status_code == 503
            other = _shared_env(redis)  # environments without secure mode are served as usual
            assert http.get(f"/sdk/evalx/{other['client_side_id']}/contexts/{b64(STUDENT)}").is_success
    finally:
        keyless.stop()
    log = keyless.log.read_text()
    assert log.count('secure mode on "secure-elsewhere"') == 1, log  # said once, clearly
    assert "RELAY_SECRET_KEY" in log


# --- rotation with open streams ---------------------------------------------------------------------


def test_rotation_keeps_open_streams_through_the_grace_period_then_ends_them(
    node: tuple[RelayProcess, RedisServer],
) -> None:
    relay, redis = node
    secrets = new_demo_env(redis.url, "rotation")
    env = {"RELAY_REDIS_URL": redis.url, "RELAY_SECRET_KEY": SECRET}

    async def scenario() -> None:
        admin = WritePath(storage_for(redis.url), actor="test")
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:
            while (await http.get("/sdk/latest-all", headers={"Authorization": secrets["sdk_key"]})).status_code != 200:
                await asyncio.sleep(0.01)

            async def open_stream(path: str, auth: str) -> EventStream:
                request = http.build_request("GET", path, headers={"Authorization": auth})
                stream = EventStream(await http.send(request, stream=True))
                assert stream.response.status_code == 200
                assert (await stream.next())[0] in ("put", "ping")
                return stream

            old = {
                "all": await open_stream("/all", secrets["sdk_key"]),
                "flags": await open_stream("/flags", secrets["sdk_key"]),
                "meval": await open_stream(f"/meval/{b64(STUDENT)}", f"api_key {secrets['mobile_key']}"),
                "mping": await open_stream("/mping", f"api_key {secrets['mobile_key']}"),
            }
            grace = 2.0
            keys = {}
            started = time.monotonic()  # the grace periods start after this and end 2 s after rotated_at
            for kind in ("sdk", "mobile"):
                args = ["env", "rotate-key", "rotation", f"--{kind}", "--grace", "2s", "--json"]
                result = await asyncio.to_thread(cli, args, env)
                assert result.exit_code == 0, result.output
                keys[kind] = json.loads(result.output)[f"{kind}_key"]
            rotated_at = time.monotonic()
            new_sdk, new_mobile = keys["sdk"], f"api_key {keys['mobile']}"
            while (await http.get("/sdk/latest-all", headers={"Authorization": new_sdk})).status_code != 200:
                await asyncio.sleep(0.01)
            fresh = await open_stream("/all", new_sdk)
            fresh_mobile = await open_stream("/mping", new_mobile)

            # During the grace period both keys work, and the old streams keep receiving changes.
            await admin.toggle("rotation", "checkout-kill-switch", False)
            for stream in [*old.values(), fresh, fresh_mobile]:
                name, _ = await stream.next()
                assert name in ("patch", "ping"), name
            assert (await http.get("/sdk/latest-all", headers={"Authorization": secrets["sdk_key"]})).status_code == 200
            assert time.monotonic() - started < grace  # all of that happened within the grace period

            # After it: the old keys are refused, and the streams they opened are ended by the node.
            await asyncio.sleep(max(0.0, grace + 0.1 - (time.monotonic() - rotated_at)))
            for path, auth in (("/all", secrets["sdk_key"]), ("/mping", f"api_key {secrets['mobile_key']}")):
                got = await http.get(path, headers={"Authorization": auth})
                assert got.status_code == 401 and got.json()["code"] == "unauthorized"
            for name, stream in old.items():
                with pytest.raises(EOFError):
                    while True:  # any event still in flight, then the end
                        await stream.next(timeout=3)
                assert time.monotonic() - rotated_at < grace + 2.5, name
            await admin.toggle("rotation", "checkout-kill-switch", True)
            assert (await fresh.next())[0] == "patch"
            assert (await fresh_mobile.next())[0] == "ping"
            for stream in [*old.values(), fresh, fresh_mobile]:
                await stream.response.aclose()

    run_async(scenario())


# --- no secret in logs, CLI output or Redis ----------------------------------------------------------


def _redis_dump(client: redis_lib.Redis) -> bytes:
    """Every key and value in Redis, whatever its type, as one blob to search."""
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        out.append(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            out.extend(b for kv in client.hgetall(key).items() for b in kv)
        elif kind == b"stream":
            out.append(repr(client.xrange(key)).encode())
        elif kind == b"list":
            out.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            out.extend(client.smembers(key))
        elif kind == b"zset":
            out.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
    return b"\n".join(out)


def test_no_secret_in_logs_cli_output_or_redis(tmp_path: Path) -> None:
    password = "redis-pass-7f3e9a1c5b"
    redis = RedisServer(tmp_path / "redis").start()
    plain = redis_lib.Redis.from_url(redis.url)
    plain.config_set("requirepass", password)
    plain.close()
    authed_url = f"redis://:{password}@127.0.0.1:{redis.port}/0"
    cli_env = {"RELAY_REDIS_URL": redis.url, "RELAY_REDIS_PASSWORD": password, "RELAY_SECRET_KEY": SECRET}
    relay = RelayProcess(
        redis.url,
        tmp_path / "relay",
        redis_password=password,
        secret_key=SECRET,
        log_format="json",
        log_level="debug",
        access_log="true",
    )
    outputs: list[str] = []
    secrets_seen: list[str] = []
    try:
        created = cli(["env", "create", "prod"], cli_env)
        assert created.exit_code == 0, created.output
        created_json = cli(["env", "create", "secure", "--secure-mode", "--json"], cli_env)
        keys = json.loads(created_json.output)
        prod = {
            "sdk_key": created.output.split("SDK key (server-side SDKs):")[1].split()[0],
            "mobile_key": created.output.split("mobile key (mobile apps):")[1].split()[0],
            "client_side_id": created.output.split("client-side ID (browsers):")[1].split()[0],
        }
        secrets_seen += [prod["sdk_key"], prod["mobile_key"], keys["sdk_key"], keys["mobile_key"]]
        doc = tmp_path / "demo.json"
        doc.write_text(json.dumps(demo_document()))
        imported = cli(["flags", "import", str(doc), "--env", "prod"], cli_env)
        assert imported.exit_code == 0, imported.output
        relay.start()
        shown = cli(["config", "show"], cli_env)
        assert (
            shown.exit_code == 0
            and '"secret_key": "****"' in shown.output
            and '"redis_password": "****"' in shown.output
        )
        shown_url = cli(["config", "show"], {**cli_env, "RELAY_REDIS_URL": authed_url})
        outputs += [shown.output, shown_url.output]
        outputs.append(cli(["env", "list"], cli_env).output)
        outputs.append(cli(["env", "secure-mode", "prod", "on"], cli_env).output)
        outputs.append(cli(["flags", "list", "--env", "prod"], cli_env).output)
        outputs.append(cli(["audit", "--env", "prod"], cli_env).output)
        outputs.append(
            cli(
                ["flags", "toggle", "new-search", "--off", "--env", "prod"], {**cli_env, "RELAY_REDIS_URL": authed_url}
            ).output
        )

        with httpx.Client(base_url=relay.url, timeout=10) as http:
            wait_loaded(http, prod["sdk_key"])
            env_id = prod["client_side_id"]
            h = ld_hash(prod["sdk_key"], STUDENT)
            ctx = b64(STUDENT)
            bad = ["sdk-00000000000000000000000000000000", "mob-00000000000000000000000000000000", "garbage"]
            for auth in [prod["sdk_key"], prod["mobile_key"], keys["sdk_key"], *bad]:
                for scheme in ("{}", "api_key {}", "Bearer {}"):
                    header = {"Authorization": scheme.format(auth), "X-API-Key": auth}
                    for route in [*SERVER_ROUTES, "/msdk/evalx/contexts/" + ctx, "/meval/" + ctx, "/mping"]:
                        with http.stream("GET", route, headers=header) as r:
                            r.close()
                    http.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "z"}}, headers=header)
                    http.post(
                        "/ofrep/v1/evaluate/flags/new-search", json={"context": {"targetingKey": "z"}}, headers=header
                    )
                    http.post("/bulk", json=[], headers=header)
                    http.post("/mobile/events/bulk", json=[], headers=header)
            for query in (f"?h={h}", "?h=0123", ""):
                http.get(f"/sdk/evalx/{env_id}/contexts/{ctx}{query}")
                http.request("REPORT", f"/sdk/evalx/{env_id}/context{query}", json=STUDENT)
                with http.stream("GET", f"/eval/{env_id}/{ctx}{query}") as r:
                    r.close()
            http.get(f"/sdk/goals/{env_id}")
            http.post(f"/events/bulk/{env_id}", json=[])
            for path in ("/status", "/metrics", "/healthz", "/readyz"):
                outputs.append(http.get(path).text)
            for kind in ("sdk", "mobile"):
                rotated = cli(["env", "rotate-key", "prod", f"--{kind}", "--grace", "0s", "--json"], cli_env)
                assert rotated.exit_code == 0, rotated.output
                secrets_seen.append(json.loads(rotated.output)[f"{kind}_key"])
            time.sleep(0.3)
            for auth in secrets_seen:  # the rotated-out keys, refused
                http.get("/sdk/latest-all", headers={"Authorization": auth})
    finally:
        relay.stop()
    log = relay.log.read_text()
    dump = _redis_dump(redis_lib.Redis.from_url(authed_url))
    redis.stop()
    assert len(log.splitlines()) > 20 and '"level":"debug"' in log.replace(" ", "")  # a real, verbose log
    for secret in [*secrets_seen, SECRET, password]:
        assert secret not in log, f"a secret is in the node's log: {secret[:6]}…"
        assert secret.encode() not in dump, f"a secret is in Redis in plain text: {secret[:6]}…"
        for out in outputs:
            assert secret not in out, f"a secret is in CLI or HTTP output: {secret[:6]}…"
    assert b'"sealed":"v1.' in dump  # the SDK keys are there sealed, as designed
