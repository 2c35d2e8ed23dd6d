"""Bringing existing LaunchDarkly keys: `relay env create --sdk-key-stdin --mobile-key-stdin
--client-side-id`, the admin API's `sdkKey`/`mobileKey`/`clientSideId`, and `relay env
import-ld-relay-config`; the keys then work against a real node with the real Python SDK."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import ldclient
import pytest
from click.testing import CliRunner, Result
from ldclient.config import Config
from ldclient.context import Context as SDKContext

from relay.access.environments import hash_key, secure_mode_hash
from relay.cli import main
from relay.wire import codec
from tests.admin.conftest import break_glass_token
from tests.integration.helpers import b64, run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

SECRET = "a-test-secret-key-of-at-least-32-characters"
ANN = {"kind": "user", "key": "ann"}
BOTH = {"usingEnvironmentId": True, "usingMobileKey": True}


def ld_keys() -> tuple[str, str, str]:
    """Keys in LaunchDarkly's own shapes: sdk-<uuid>, mob-<uuid>, 24 hex digits."""
    return f"sdk-{uuid.uuid4()}", f"mob-{uuid.uuid4()}", uuid.uuid4().hex[:24]


def relay_cli(args: list[str], url: str, stdin: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(main, args, env={"RELAY_REDIS_URL": url, "RELAY_ACTOR": "ops", **env}, input=stdin)


def put_flag(url: str, env: str) -> None:
    result = relay_cli(
        ["flags", "set", "-", "--env", env], url, stdin=json.dumps(simple_flag("go", clientSideAvailability=BOTH))
    )
    assert result.exit_code == 0, result.output


def serves(node: RelayProcess, sdk_key: str, mobile_key: str | None, client_side_id: str | None, h: str = "") -> None:
    """The keys work: the real SDK with the SDK key, evalx with the client-side ID, the mobile route."""
    client = ldclient.LDClient(
        Config(sdk_key, base_uri=node.url, stream_uri=node.url, events_uri=node.url, send_events=False), start_wait=10
    )
    try:
        assert client.is_initialized()
        assert client.variation("go", SDKContext.from_dict(ANN), False) is True
    finally:
        client.close()
    if client_side_id is not None:
        query = f"?h={h}" if h else ""
        r = httpx.get(f"{node.url}/sdk/evalx/{client_side_id}/contexts/{b64(ANN)}{query}", timeout=5)
        assert r.status_code == 200 and r.json()["go"]["value"] is True, r.text
    if mobile_key is not None:
        r = httpx.get(f"{node.url}/msdk/evalx/contexts/{b64(ANN)}", headers={"Authorization": mobile_key}, timeout=5)
        assert r.status_code == 200 and r.json()["go"]["value"] is True, r.text


@pytest.fixture
def node(redis_server: RedisServer, tmp_path: Path) -> Iterator[RelayProcess]:
    relay = RelayProcess(redis_server.url, tmp_path / "relay", secret_key=SECRET).start()
    yield relay
    relay.stop()


def test_given_keys_are_stored_hashed_and_serve_the_sdk_evalx_and_mobile(
    redis_server: RedisServer, node: RelayProcess
) -> None:
    url = redis_server.url
    sdk, mob, csid = ld_keys()
    result = relay_cli(
        ["env", "create", "prod", "--sdk-key-stdin", "--mobile-key-stdin", "--client-side-id", csid, "--json"],
        url,
        stdin=f"{sdk}\n{mob}\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"key": "prod", "sdk_key": sdk, "client_side_id": csid, "mobile_key": mob}
    record = run_async(storage_for(url).environment("prod"))
    assert record is not None and sdk.encode() not in record and mob.encode() not in record
    stored = codec.loads(record)
    assert stored["sdkKeys"][0]["hash"] == hash_key(sdk) and stored["mobileKeys"][0]["hash"] == hash_key(mob)
    put_flag(url, "prod")
    serves(node, sdk, mob, csid)


def test_keys_another_environment_has_and_bad_shapes_are_refused(redis_server: RedisServer) -> None:
    url = redis_server.url
    sdk, mob, csid = ld_keys()
    made = relay_cli(
        ["env", "create", "a", "--sdk-key-stdin", "--mobile-key-stdin", "--client-side-id", csid],
        url,
        stdin=f"{sdk}\n{mob}\n",
    )
    assert made.exit_code == 0, made.output
    other_sdk, other_mob, other_csid = ld_keys()
    cases = [
        (["--sdk-key-stdin"], f"{sdk}\n", "sdkKey", 4),
        (["--mobile-key-stdin"], f"{mob}\n", "mobileKey", 4),
        (["--client-side-id", csid], None, "clientSideId", 4),
        (["--sdk-key-stdin"], "\n", "sdkKey: the SDK key is empty", 2),
        (["--sdk-key-stdin"], f"{other_mob}\n", 'sdkKey: a LaunchDarkly SDK key starts with "sdk-"', 2),
        (["--mobile-key-stdin"], f"mob-{'x' * 200}\n", "mobileKey: the mobile key is 204 characters", 2),
        (["--client-side-id", "abc def"], None, "clientSideId: the client-side ID holds whitespace", 2),
    ]
    for args, stdin, message, code in cases:
        refused = relay_cli(["env", "create", "b", *args], url, stdin=stdin)
        assert refused.exit_code == code and message in refused.output, (args, refused.output)
        assert sdk not in refused.output
    listed = json.loads(relay_cli(["env", "list", "--json"], url).output)
    assert [e["key"] for e in listed] == ["a"]
    # Keys no other environment has are fine.
    ok = relay_cli(["env", "create", "b", "--sdk-key-stdin", "--client-side-id", other_csid], url, stdin=other_sdk)
    assert ok.exit_code == 0, ok.output


def test_the_admin_api_takes_given_keys(redis_server: RedisServer, node: RelayProcess) -> None:
    root = break_glass_token(redis_server.url)
    sdk, mob, csid = ld_keys()
    body = {"sdkKey": sdk, "mobileKey": mob, "clientSideId": csid, "secureMode": True}
    headers = {"Authorization": f"Bearer {root}"}
    r = httpx.post(f"{node.admin_url}/api/v1/environments/prod", json=body, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    assert (r.json()["sdkKey"], r.json()["mobileKey"], r.json()["clientSideId"]) == (sdk, mob, csid)
    again = httpx.post(f"{node.admin_url}/api/v1/environments/other", json=body, headers=headers, timeout=10)
    assert again.status_code == 409 and "already has this" in again.text, again.text
    bad = httpx.post(f"{node.admin_url}/api/v1/environments/other", json={"sdkKey": 5}, headers=headers, timeout=10)
    assert bad.status_code == 422 and bad.json()["path"] == "sdkKey", bad.text
    put_flag(redis_server.url, "prod")
    serves(node, sdk, mob, csid, h=secure_mode_hash(sdk, "ann"))


LD_RELAY_CONF = """\
# LaunchDarkly Relay Proxy configuration, as its docs/configuration.md shows it
[Main]
    port = 8030
    heartbeatInterval = 15

[Redis]
    host = "localhost"
    localTtl = 30s

[Environment "Spree Project Test"]
    sdkKey = "{sdk2}"
    envId = "{csid2}"
    logLevel = "debug"
    colour = blue

[Environment "Spree Project Production"]
    sdkKey = "{sdk1}"
    mobileKey = "{mob1}"   ; the mobile key
    envId = {csid1}
    secureMode = true
    allowedOrigin = "https://example.com"
    allowedOrigin = "https://www.example.com"
    prefix = "ld-spree-prod"
"""


def test_an_ld_relay_config_moves_in_one_command(redis_server: RedisServer, node: RelayProcess, tmp_path: Path) -> None:
    url = redis_server.url
    (sdk1, mob1, csid1), (sdk2, _, csid2) = ld_keys(), ld_keys()
    conf = tmp_path / "ld-relay.conf"
    conf.write_text(LD_RELAY_CONF.format(sdk1=sdk1, mob1=mob1, csid1=csid1, sdk2=sdk2, csid2=csid2))
    no_secret = relay_cli(["env", "import-ld-relay-config", str(conf)], url)
    assert no_secret.exit_code == 2 and "RELAY_SECRET_KEY" in no_secret.output, no_secret.output
    assert json.loads(relay_cli(["env", "list", "--json"], url).output) == []  # not even the first block's
    dry = relay_cli(["env", "import-ld-relay-config", str(conf), "--dry-run"], url, RELAY_SECRET_KEY=SECRET)
    assert dry.exit_code == 0, dry.output
    assert 'would create [Environment "Spree Project Production"] -> spree-project-production' in dry.output
    assert "allowedorigin = https://example.com, https://www.example.com not imported" in dry.output
    assert "unknown field 'colour'" in dry.output and "dry run: nothing created" in dry.output
    assert json.loads(relay_cli(["env", "list", "--json"], url).output) == []
    done = relay_cli(["env", "import-ld-relay-config", str(conf)], url, RELAY_SECRET_KEY=SECRET)
    assert done.exit_code == 0, done.output
    listed = {e["key"]: e for e in json.loads(relay_cli(["env", "list", "--json"], url).output)}
    assert listed["spree-project-production"]["secure_mode"] is True
    assert listed["spree-project-test"]["secure_mode"] is False
    assert listed["spree-project-production"]["name"] == "Spree Project Production"
    for env in listed:
        put_flag(url, env)
    serves(node, sdk1, mob1, csid1, h=secure_mode_hash(sdk1, "ann"))
    serves(node, sdk2, None, csid2)
    insecure = httpx.get(f"{node.url}/sdk/evalx/{csid1}/contexts/{b64(ANN)}", timeout=5)
    assert insecure.status_code == 400, insecure.text  # secure mode came along: no hash, no flags
    again = relay_cli(["env", "import-ld-relay-config", str(conf)], url, RELAY_SECRET_KEY=SECRET)
    assert again.exit_code == 2 and "relay already has spree-project-test, spree-project-production" in again.output
    skipped = relay_cli(["env", "import-ld-relay-config", str(conf), "--skip-existing"], url, RELAY_SECRET_KEY=SECRET)
    assert skipped.exit_code == 0 and skipped.output.count("skipped spree-project-") == 2, skipped.output


def test_an_ld_relay_config_with_a_taken_or_repeated_key_creates_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    url = redis_server.url
    (sdk1, _, csid1), (sdk2, _, csid2) = ld_keys(), ld_keys()
    taken = relay_cli(["env", "create", "old", "--sdk-key-stdin"], url, stdin=f"{sdk2}\n")
    assert taken.exit_code == 0, taken.output
    conf = tmp_path / "ld-relay.conf"
    blocks = (
        f'[Environment "A"]\nsdkKey = {sdk1}\nenvId = {csid1}\n[Environment "B"]\nsdkKey = {sdk2}\nenvId = {csid2}\n'
    )
    conf.write_text(blocks)
    refused = relay_cli(["env", "import-ld-relay-config", str(conf)], url)
    assert refused.exit_code == 4 and 'sdkKey: environment "old" already has this key' in refused.output
    conf.write_text(f'[Environment "A"]\nsdkKey = {sdk1}\n[Environment "B"]\nsdkKey = {sdk1}\n')
    repeated = relay_cli(["env", "import-ld-relay-config", str(conf)], url)
    assert repeated.exit_code == 2 and 'the same key as [Environment "A"]' in repeated.output, repeated.output
    assert [e["key"] for e in json.loads(relay_cli(["env", "list", "--json"], url).output)] == ["old"]
