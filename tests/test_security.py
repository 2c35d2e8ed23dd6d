"""Security pieces in-process: sealing, the secure-mode hash against LaunchDarkly's SDK, the node's
secure-mode check (rotation grace, missing secret key), stream credentials, masked settings."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from ldclient import Config, Context, LDClient

from relay.access.environments import Credential, Environment, hash_key, secure_mode_hash
from relay.access.sealing import Sealer, SealError, aad
from relay.access.securemode import SecureMode
from relay.config import Settings, load_settings
from relay.errors import InvalidSecureModeHash, SecureModeUnavailable, ValidationError
from relay.evaluation import parse_context
from relay.fanout.hub import Sink
from relay.server.credentials import StreamCredentials

SECRET = "s" * 40
CONTEXTS = [
    {"kind": "user", "key": "user-key"},
    {"kind": "user", "key": "a:b%c", "name": "escaped only outside user"},
    {"kind": "org", "key": "acme:eu%1"},
    {"kind": "multi", "user": {"key": "ann"}, "org": {"key": "o:1"}, "device": {"key": "d%"}},
    {"kind": "multi", "zeta": {"key": "z"}, "alpha": {"key": "a"}},  # ordered by kind
]


@pytest.mark.parametrize("ctx", CONTEXTS, ids=lambda c: str(c.get("kind")) + ":" + str(c.get("key", "")))
def test_secure_mode_hash_is_the_ld_sdks(ctx: dict[str, Any]) -> None:
    client = LDClient(Config("sdk-test-key", offline=True))
    try:
        expected = client.secure_mode_hash(Context.from_dict(ctx))
    finally:
        client.close()
    assert secure_mode_hash("sdk-test-key", parse_context(ctx).fully_qualified_key) == expected


def test_secure_mode_hash_protocol_example() -> None:
    got = secure_mode_hash("sdk-test-key", parse_context({"key": "user-key"}).fully_qualified_key)
    assert got == "6ba47a6146f3e6e2691a9a288ecafda218d604d32ccdafa6e78e696ccf2c1945"


def test_sealed_keys_open_only_with_their_secret_and_binding() -> None:
    sealer = Sealer(SECRET)
    token = sealer.seal("sdk-abc", aad("prod", "h1"))
    assert "sdk-abc" not in token and token.startswith(f"v1.{sealer.fingerprint}.")
    assert sealer.open(token, aad("prod", "h1")) == "sdk-abc"
    assert sealer.seal("sdk-abc", aad("prod", "h1")) != token  # a fresh nonce each time
    with pytest.raises(SealError, match="another secret key"):
        Sealer("t" * 40).open(token, aad("prod", "h1"))
    for binding in (aad("staging", "h1"), aad("prod", "h2")):
        with pytest.raises(SealError, match="does not open"):
            sealer.open(token, binding)
    with pytest.raises(SealError):
        sealer.open(token[:-4] + "AAAA", aad("prod", "h1"))
    with pytest.raises(ValidationError, match="secret_key"):
        Sealer("short")


def test_settings_mask_and_check_the_secret_key() -> None:
    masked = Settings(secret_key=SECRET, redis_password="pw", redis_url="redis://u:pw@h:1/0").masked()
    assert masked["secret_key"] == "****" and masked["redis_password"] == "****" and "pw" not in masked["redis_url"]
    assert load_settings({"RELAY_SECRET_KEY": SECRET}, config_file=None).secret_key == SECRET
    with pytest.raises(ValidationError, match="secret_key"):
        load_settings({"RELAY_SECRET_KEY": "too-short"})


def _env(sealer: Sealer, *keys: tuple[str, int | None], secure: bool = True) -> Environment:
    creds = tuple(Credential(hash_key(k), exp, sealer.seal(k, aad("prod", hash_key(k)))) for k, exp in keys)
    return Environment("prod", "prod", 0, "cid", sdk_keys=creds, secure_mode=secure)


def test_rotation_keeps_sealed_keys_and_records_round_trip() -> None:
    sealer = Sealer(SECRET)
    env = _env(sealer, ("sdk-old", None))
    rotated = env.rotated("sdk", "sdk-new", 1000, 500, sealer.seal("sdk-new", aad("prod", hash_key("sdk-new"))))
    assert [c.expires_ms for c in rotated.sdk_keys] == [None, 1500]
    assert rotated.sdk_keys[1].sealed == env.sdk_keys[0].sealed
    assert Environment.from_dict(rotated.to_dict()) == rotated


def test_node_check_accepts_live_keys_hashes_only() -> None:
    sealer = Sealer(SECRET)
    env = _env(sealer, ("sdk-new", None), ("sdk-old", 2000))
    check = SecureMode(SECRET).check
    fqk = "user-key"
    assert check(env, fqk, secure_mode_hash("sdk-new", fqk), 1000) == hash_key("sdk-new")
    assert check(env, fqk, secure_mode_hash("sdk-old", fqk), 1000) == hash_key("sdk-old")  # grace
    assert check(env, fqk, secure_mode_hash("sdk-new", fqk).upper(), 1000)
    with pytest.raises(InvalidSecureModeHash):
        check(env, fqk, secure_mode_hash("sdk-old", fqk), 2000)  # expired
    for h in (None, "", secure_mode_hash("sdk-new", "other"), secure_mode_hash("sdk-x", fqk)):
        with pytest.raises(InvalidSecureModeHash):
            check(env, fqk, h, 1000)


def test_node_without_a_usable_secret_refuses_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    env = _env(Sealer(SECRET), ("sdk-k", None))
    h = secure_mode_hash("sdk-k", "u")
    for secure in (SecureMode(None), SecureMode("x" * 40)):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="relay.access.securemode"):
            for _ in range(3):
                with pytest.raises(SecureModeUnavailable):
                    secure.check(env, "u", h, 0)
        problems = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
        assert len(problems) == 1, caplog.text
        assert "sdk-k" not in caplog.text and SECRET not in caplog.text


def test_streams_end_when_their_credential_stops_being_valid() -> None:
    valid = {("sdk", "a"): True, ("sdk", "b"): True}
    attached: set[Sink] = set()

    async def scenario() -> None:
        creds = StreamCredentials(lambda kind, h: valid[(kind, h)])
        creds.INTERVAL = 0.01
        ended: list[str] = []
        sinks = {}
        for name, key in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            sink = Sink("prod", "all", lambda data: True, 0, lambda name=name: ended.append(name))  # type: ignore[misc]
            on_attach, _ = creds.guard("sdk", key, attached.add, attached.discard)
            on_attach(sink)
            sinks[name] = sink
        await asyncio.sleep(0.05)
        assert ended == [] and creds.count() == 3
        valid[("sdk", "a")] = False
        await asyncio.sleep(0.05)
        assert sorted(ended) == ["a1", "a2"] and attached == {sinks["b1"]} and creds.count() == 1
        _, on_detach = creds.guard("sdk", "b", attached.add, attached.discard)
        on_detach(sinks["b1"])  # the client left: nothing tracked, the timer stops
        await asyncio.sleep(0.05)
        assert creds.count() == 0 and creds._timer is None and creds.closed == 2

    asyncio.run(scenario())
