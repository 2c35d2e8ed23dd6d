"""relay.server.ldstatus: /status carries LaunchDarkly Relay's fields (the shape of the example in
its docs, tests/server/ld_relay_status.json), with keys masked by its rule, beside relay's own."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from relay.access.environments import Credential, Environment, credential, hash_key, mask_key
from relay.server.ldstatus import add_ld_status
from relay.store.ruleset import Ruleset
from relay.store.state import State

LD_EXAMPLE = json.loads((Path(__file__).parent / "ld_relay_status.json").read_text())
SDK_KEY = "sdk-0123456789abcdef0123456789a99999"
MOBILE_KEY = "mob-fedcba9876543210fedcba9876588888"
# Present only with persistent stores, big segments or after an error, in LaunchDarkly Relay too.
OPTIONAL = {"database", "dbServer", "dbPrefix", "dbTable", "bigSegmentStatus", "lastError"}


def test_keys_are_masked_by_launchdarkly_relay_s_rule() -> None:
    # ld-relay's own cases (internal/sdks/obscure_key_test.go), and its docs' example shape.
    assert mask_key("def01234-56-789abc") == "********-**-*89abc"
    assert mask_key("sdk-def01234-56-789abc") == "sdk-********-**-*89abc"
    assert mask_key("mob-def01234-56-789abc") == "mob-********-**-*89abc"
    assert mask_key("89abc") == "89abc" and mask_key("9abc") == "9abc" and mask_key("sdk-9abc") == "sdk-9abc"
    ld_style = "sdk-01234567-89ab-cdef-0123-456789a99999"
    assert mask_key(ld_style) == LD_EXAMPLE["environments"]["environment1"]["sdkKey"]
    assert mask_key(SDK_KEY) == "sdk-" + "*" * 27 + "99999"


def test_a_credential_keeps_the_masked_form_through_its_record() -> None:
    cred = credential(SDK_KEY, sealed="sealed-blob")
    assert (cred.hash, cred.sealed, cred.masked) == (hash_key(SDK_KEY), "sealed-blob", mask_key(SDK_KEY))
    env = Environment("prod", "Production", 1, "abcdefabcdefabcdefabcdef", (cred,), (credential(MOBILE_KEY),))
    again = Environment.from_dict(json.loads(json.dumps(env.to_dict())))
    assert again == env and again.sdk_keys[0].masked == mask_key(SDK_KEY)
    assert SDK_KEY not in json.dumps(env.to_dict())
    old = Environment.from_dict({"key": "x", "clientSideId": "c", "sdkKeys": [{"hash": "h", "expires": None}]})
    assert old.sdk_keys[0].masked is None  # a record from before: read as it was
    assert "masked" not in json.dumps(old.to_dict())


def _state(*, connected: bool = True, stale_for: float | None = None) -> State:
    state = State()
    prod = Environment(
        "prod", "Production", 1, "abcdefabcdefabcdefabcdef", (credential(SDK_KEY),), (credential(MOBILE_KEY),)
    )
    state.set_environments([prod])
    rs = Ruleset("prod")
    rs.replace({}, {}, 3)
    state.rulesets["prod"] = rs
    state.connected = connected
    state.loaded.set()
    if stale_for is not None:
        state.connected = False
        state.last_error = "ConnectionError: Connection refused"
        rs.stale_since = time.time() - stale_for
    return state


def _body(state: State, **kwargs: Any) -> dict[str, Any]:
    out = state.status()
    add_ld_status(out, state, **kwargs)
    return json.loads(json.dumps(out))


def _paths(doc: Any, prefix: str = "") -> dict[str, type]:
    if not isinstance(doc, dict):
        return {prefix: type(doc)}
    out: dict[str, type] = {}
    for k, v in doc.items():
        if k not in OPTIONAL and not k.startswith("_"):
            out.update(_paths(v, f"{prefix}.{k}"))
    return out


def test_the_body_has_every_field_of_launchdarkly_relay_s_example_with_its_type() -> None:
    body = _body(_state())
    example = dict(LD_EXAMPLE, environments={"prod": LD_EXAMPLE["environments"]["environment1"]})
    expected, got = _paths(example), _paths(body)
    assert {p: got.get(p) for p in expected} == expected
    prod = body["environments"]["prod"]
    assert body["status"] == "healthy" and prod["status"] == "connected"
    assert prod["connectionStatus"]["state"] == "VALID" and prod["dataStoreStatus"]["state"] == "VALID"
    assert (prod["sdkKey"], prod["mobileKey"], prod["envId"]) == (
        mask_key(SDK_KEY),
        mask_key(MOBILE_KEY),
        "abcdefabcdefabcdefabcdef",
    )
    assert (prod["envKey"], prod["envName"]) == ("prod", "Production")
    # relay's own fields are all still there, with their values.
    plain = State.status(_state())
    assert {k: body[k] for k in plain if k != "environments"} == {k: v for k, v in plain.items() if k != "environments"}
    assert {k: prod[k] for k in plain["environments"]["prod"]} == plain["environments"]["prod"]


def test_lost_redis_is_interrupted_then_after_the_disconnected_time_degraded() -> None:
    # As LaunchDarkly's example: INTERRUPTED but still "connected" within disconnectedStatusTime.
    state = _state(stale_for=2)
    body = _body(state)
    prod = body["environments"]["prod"]
    assert prod["connectionStatus"]["state"] == "INTERRUPTED" and prod["status"] == "connected"
    assert body["status"] == "healthy"
    assert prod["connectionStatus"]["lastError"]["kind"] == "NETWORK_ERROR"
    since = prod["connectionStatus"]["stateSince"]
    assert abs(since - (time.time() - 2) * 1000) < 1000
    body = _body(_state(stale_for=61))
    assert body["environments"]["prod"]["status"] == "disconnected" and body["status"] == "degraded"
    assert _body(_state(stale_for=2), disconnected_after=0)["status"] == "degraded"


def test_before_the_first_load_it_is_initializing_and_degraded() -> None:
    state = State()
    state.rulesets["prod"] = Ruleset("prod")
    body = _body(state)
    prod = body["environments"]["prod"]
    assert prod["connectionStatus"]["state"] == "INITIALIZING" and prod["status"] == "disconnected"
    assert body["status"] == "degraded" and "sdkKey" not in prod  # no record yet: nothing to show


def test_rotated_and_old_records_show_masks_never_keys() -> None:
    state = _state()
    now_ms = int(time.time() * 1000)
    rotated = state.environments["prod"].rotated("sdk", "sdk-" + "1" * 27 + "77777", now_ms, 60_000)
    legacy = Environment("old", "old", 1, "c" * 24, (Credential(hash_key(SDK_KEY)),), ())
    state.set_environments([rotated, legacy])
    state.rulesets["old"] = Ruleset("old")
    state.rulesets["old"].replace({}, {}, 1)
    body = _body(state)
    prod, old = body["environments"]["prod"], body["environments"]["old"]
    assert prod["sdkKey"] == "sdk-" + "*" * 27 + "77777" and prod["expiringSdkKey"] == mask_key(SDK_KEY)
    assert old["sdkKey"] == "sdk-" + "*" * 32 and "mobileKey" not in old
    text = json.dumps(body)
    for secret in (SDK_KEY, MOBILE_KEY, hash_key(SDK_KEY), hash_key(MOBILE_KEY)):
        assert secret not in text
