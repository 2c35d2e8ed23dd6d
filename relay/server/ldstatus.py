"""LaunchDarkly Relay Proxy's /status fields, added to relay's own so monitors written for it work.

LaunchDarkly's Relay Proxy (ld-relay v8, relay/endpoints_status.go and internal/api/status_reps.go)
answers /status with a top-level `status` ("healthy" / "degraded"), `version`, `clientVersion` and,
per environment, masked `sdkKey` / `mobileKey`, `envId`, `status` ("connected" / "disconnected"),
`connectionStatus` and `dataStoreStatus`. relay's equivalents: its data source is Redis, reached by
the sync (so `connectionStatus` follows the sync's session), and its data store is the node's memory
(so `dataStoreStatus` is always VALID, as LaunchDarkly reports an in-memory store). Environments stay
keyed by relay's environment key, as LaunchDarkly keys them by their configured name.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from relay.access.environments import Credential, Environment
from relay.store.ruleset import Ruleset
from relay.store.state import State

# LaunchDarkly's `disconnectedStatusTime` default: an environment is "disconnected" (and the relay
# "degraded") once its source has been lost this long, so a short blip does not page anyone.
DISCONNECTED_STATUS_TIME = 60.0

try:
    VERSION = metadata.version("relay")
except metadata.PackageNotFoundError:  # run from a source tree without an install
    VERSION = "unknown"

# What LaunchDarkly's Go SDK would call the sync's errors (its DataSourceErrorKind), by type name.
_ERROR_KINDS = {
    "ResponseError": "ERROR_RESPONSE",
    "AuthenticationError": "ERROR_RESPONSE",
    "AuthorizationError": "ERROR_RESPONSE",
    "NoPermissionError": "ERROR_RESPONSE",
    "ValidationError": "INVALID_DATA",
    "DataError": "INVALID_DATA",
}
# A record made before relay kept masked keys: the shape of a masked key, with no tail to show.
_NO_TAIL = "*" * 32


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _masked(creds: tuple[Credential, ...], prefix: str) -> str | None:
    if not creds:
        return None
    return creds[0].masked or f"{prefix}-{_NO_TAIL}"


def _connection(state: State, rs: Ruleset) -> dict[str, Any]:
    """LaunchDarkly's `connectionStatus`: VALID, INITIALIZING or INTERRUPTED, since when (Unix ms)."""
    if rs.stale_since is not None:
        out: dict[str, Any] = {"state": "INTERRUPTED", "stateSince": _ms(rs.stale_since)}
    elif rs.ready and state.connected:
        out = {"state": "VALID", "stateSince": _ms(state.connected_since)}
    else:
        out = {"state": "INITIALIZING", "stateSince": _ms(state.started)}
    if state.last_failure is not None:
        message, at = state.last_failure
        kind = _ERROR_KINDS.get(message.split(":", 1)[0], "NETWORK_ERROR")
        out["lastError"] = {"kind": kind, "time": _ms(at)}
    return out


def _environment(
    state: State, rs: Ruleset, env: Environment | None, now: float, disconnected_after: float
) -> tuple[dict[str, Any], bool]:
    """One environment's LaunchDarkly fields, and whether it counts as connected."""
    connection = _connection(state, rs)
    connected = rs.ready and (
        connection["state"] == "VALID" or (rs.stale_since is not None and now - rs.stale_since < disconnected_after)
    )
    out: dict[str, Any] = {
        "status": "connected" if connected else "disconnected",
        "connectionStatus": connection,
        "dataStoreStatus": {"state": "VALID", "stateSince": _ms(state.started)},
    }
    if env is not None:
        now_ms = _ms(now)
        live = env.live("sdk", now_ms)
        out["sdkKey"] = _masked(live, "sdk")
        expiring = [c for c in live[1:] if c.expires_ms is not None]
        if expiring:
            out["expiringSdkKey"] = _masked(tuple(expiring), "sdk")
        mobile = _masked(env.live("mobile", now_ms), "mob")
        if mobile is not None:
            out["mobileKey"] = mobile
        out.update(envId=env.client_side_id, envKey=env.key, envName=env.name)
    return out, connected


def add_ld_status(out: dict[str, Any], state: State, *, disconnected_after: float | None = None) -> None:
    """Add LaunchDarkly Relay's fields to relay's /status body `out` (from `State.status`), in place.
    No relay field is changed: LaunchDarkly's names are all new to the body."""
    now = time.time()
    if disconnected_after is None:
        disconnected_after = DISCONNECTED_STATUS_TIME
    healthy = state.loaded.is_set()  # LaunchDarkly: degraded until fully configured
    environments = out["environments"]
    for key, rs in state.rulesets.items():
        info, connected = _environment(state, rs, state.environments.get(key), now, disconnected_after)
        healthy &= connected
        environments.setdefault(key, {}).update(info)
    out["status"] = "healthy" if healthy else "degraded"
    out["version"] = VERSION
    # LaunchDarkly: its Go SDK's version. relay evaluates with its own code, of relay's version.
    out["clientVersion"] = VERSION
