"""What a node holds from Redis: written by the sync (relay.store.sync), read by the server.

The server sees this, never the sync: rulesets by environment, the environments and the index of
their keys, and how the sync is doing (connected, resyncs) for /readyz, /status and /metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from relay.access.environments import Environment
from relay.access.keys import KeyIndex
from relay.store.ruleset import Ruleset


class State:
    """One node's data and the sync's health. Only the sync writes it."""

    def __init__(self) -> None:
        self.rulesets: dict[str, Ruleset] = {}
        self.environments: dict[str, Environment] = {}
        # Kept current by `set_environments`, its one writer: requests only look keys up.
        self.keys = KeyIndex()
        self.loaded = asyncio.Event()  # set once every environment has been loaded
        self.started = time.time()
        self._connected = False
        self.connected_since = self.started  # when `connected` last changed (LaunchDarkly's stateSince)
        self.resyncs = 0
        self.invalid_items = 0
        self._last_error: str | None = None
        # The most recent error and when, kept after a reconnect as LaunchDarkly's lastError is.
        self.last_failure: tuple[str, float] | None = None
        self._generation = 0  # bumped whenever an environment record changes

    @property
    def connected(self) -> bool:
        """The sync holds a Redis session (its one writer sets it)."""
        return self._connected

    @connected.setter
    def connected(self, value: bool) -> None:
        if value != self._connected:
            self._connected, self.connected_since = value, time.time()

    @property
    def last_error(self) -> str | None:
        """The error that ended the last Redis session; None while connected."""
        return self._last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._last_error = value
        if value is not None:
            self.last_failure = (value, time.time())

    def set_environments(self, environments: Iterable[Environment]) -> None:
        """Take environment records (new or changed) and rebuild the key index once for all of them."""
        changed = False
        for env in environments:
            held = self.environments.get(env.key)
            if held is not None and held == env and held.extra == env.extra:
                continue  # the same record again (a load reads each one twice): no rebuild
            self.environments[env.key] = env
            changed = True
        if changed:
            self._generation += 1
            self.keys.rebuild(self.environments, self._generation)

    def drop_environment(self, env: str) -> bool:
        """Forget a deleted environment: its ruleset, its record and so its keys. False if unknown."""
        known = self.rulesets.pop(env, None) is not None
        if self.environments.pop(env, None) is not None:
            known = True
            self._generation += 1
            self.keys.rebuild(self.environments, self._generation)
        return known

    def ready(self) -> bool:
        """Every environment loaded (/readyz)."""
        return self.loaded.is_set() and all(rs.ready for rs in self.rulesets.values())

    def status(self) -> dict[str, Any]:
        """The sync's health and each environment's data, for /status."""
        now = time.time()
        return {
            "connected": self.connected,
            "last_error": self.last_error,
            "resyncs": self.resyncs,
            "environments": {
                env: {
                    "version": rs.version,
                    "ready": rs.ready,
                    "stale": rs.stale_since is not None,
                    "stale_seconds": None if rs.stale_since is None else round(now - rs.stale_since, 3),
                    "flags": sum(1 for f in rs.flags.values() if not f.deleted),
                    "segments": sum(1 for s in rs.segments.values() if not s.deleted),
                    "diverged": rs.diverged,
                }
                for env, rs in sorted(self.rulesets.items())
            },
        }
