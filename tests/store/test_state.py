"""relay.store.state: the key index follows the environment records as the sync sets them, and
readiness and /status come from the rulesets held."""

from __future__ import annotations

import time

from relay.access.environments import Credential, Environment, hash_key
from relay.evaluation import parse_flag
from relay.store.ruleset import Ruleset
from relay.store.state import State

NOW_MS = int(time.time() * 1000)


def environment(key: str, sdk_keys: tuple[str, ...], mobile_key: str, client_id: str, **extra: object) -> Environment:
    return Environment(
        key=key,
        name=key,
        created_ms=0,
        client_side_id=client_id,
        sdk_keys=tuple(Credential(hash_key(k)) for k in sdk_keys),
        mobile_keys=(Credential(hash_key(mobile_key)),),
        extra=dict(extra),
    )


def test_keys_are_found_once_their_environment_is_set() -> None:
    state = State()
    assert state.keys.find("sdk", "sdk-1") is None and state.keys.by_client_id("c1") is None
    state.set_environments(
        [environment("prod", ("sdk-1",), "mob-1", "c1"), environment("dev", ("sdk-2",), "mob-2", "c2")]
    )
    assert state.keys.find("sdk", "sdk-1", NOW_MS) is state.environments["prod"]
    assert state.keys.find("mobile", "mob-2", NOW_MS) is state.environments["dev"]
    assert state.keys.by_client_id("c2") is state.environments["dev"]
    assert state.keys.find("mobile", "sdk-1", NOW_MS) is None  # an SDK key is no mobile key
    assert state.keys.live("sdk", hash_key("sdk-2"), NOW_MS)


def test_a_changed_record_replaces_the_old_keys() -> None:
    state = State()
    state.set_environments([environment("prod", ("sdk-1",), "mob-1", "c1")])
    state.set_environments([environment("prod", ("sdk-new",), "mob-1", "c9")])
    assert state.keys.find("sdk", "sdk-new", NOW_MS) is state.environments["prod"]
    assert state.keys.find("sdk", "sdk-1", NOW_MS) is None and not state.keys.live("sdk", hash_key("sdk-1"), NOW_MS)
    assert state.keys.by_client_id("c1") is None and state.keys.by_client_id("c9") is state.environments["prod"]


def test_the_same_record_again_keeps_what_is_held() -> None:
    state = State()
    first = environment("prod", ("sdk-1",), "mob-1", "c1", team="payments")
    state.set_environments([first])
    state.set_environments([environment("prod", ("sdk-1",), "mob-1", "c1", team="payments")])
    assert state.environments["prod"] is first and state.keys.by_client_id("c1") is first
    # A record equal but for fields relay does not model is still a new record.
    other = environment("prod", ("sdk-1",), "mob-1", "c1", team="growth")
    state.set_environments([other])
    assert state.environments["prod"] is other and state.keys.by_client_id("c1") is other


def test_ready_once_loaded_and_every_ruleset_is() -> None:
    state = State()
    assert not state.ready()
    state.loaded.set()
    assert state.ready()  # no environment at all: nothing to wait for
    state.rulesets["prod"] = Ruleset("prod")
    assert not state.ready()
    state.rulesets["prod"].replace({}, {}, 1)
    assert state.ready()


def test_status_reports_each_environment_in_order() -> None:
    state = State()
    state.connected, state.resyncs, state.last_error = True, 3, None
    dev, prod = Ruleset("dev"), Ruleset("prod")
    on = {"on": True, "variations": [False, True], "offVariation": 0, "fallthrough": {"variation": 1}}
    prod.replace(
        {
            "a": parse_flag({"key": "a", "version": 1, **on}),
            "b": parse_flag({"key": "b", "version": 2, "deleted": True}),
        },
        {},
        7,
    )
    prod.stale_since = time.time() - 2
    dev.diverged = "Redis is behind"
    state.rulesets.update(prod=prod, dev=dev)
    status = state.status()
    assert list(status["environments"]) == ["dev", "prod"]
    assert {k: status[k] for k in ("connected", "last_error", "resyncs")} == {
        "connected": True,
        "last_error": None,
        "resyncs": 3,
    }
    p = status["environments"]["prod"]
    assert (p["version"], p["ready"], p["stale"], p["flags"], p["segments"], p["diverged"]) == (
        7,
        True,
        True,
        1,
        0,
        None,
    )
    assert 1.9 <= p["stale_seconds"] < 10
    d = status["environments"]["dev"]
    assert (d["ready"], d["stale"], d["stale_seconds"], d["diverged"]) == (False, False, None, "Redis is behind")
