"""Credentials from requests: which environment a server-side SDK key or mobile key belongs to."""

from __future__ import annotations

import time

from relay.access.environments import Environment, hash_key


def credential(header: str | None) -> str | None:
    """The key in an Authorization header: raw (LaunchDarkly SDKs), `api_key K` or `Bearer K`."""
    if not header:
        return None
    header = header.strip()
    for prefix in ("api_key ", "Bearer ", "bearer "):
        if header.startswith(prefix):
            header = header[len(prefix) :].strip()
    return header or None


class KeyIndex:
    """Environment by secret-key hash, rebuilt when the environments change.

    Lookup is by SHA-256 of the presented key: a dict probe on a hash reveals nothing about the key
    through timing, and the matched credential is then compared in constant time with its expiry."""

    def __init__(self) -> None:
        self._generation = -1
        self._by_hash: dict[tuple[str, str], Environment] = {}
        self._by_client_id: dict[str, Environment] = {}

    def rebuild(self, environments: dict[str, Environment], generation: int) -> None:
        if generation == self._generation:
            return
        index: dict[tuple[str, str], Environment] = {}
        for env in environments.values():
            for kind, creds in (("sdk", env.sdk_keys), ("mobile", env.mobile_keys)):
                for cred in creds:
                    index[(kind, cred.hash)] = env
        self._by_hash = index
        self._by_client_id = {env.client_side_id: env for env in environments.values()}
        self._generation = generation

    def by_client_id(self, client_side_id: str) -> Environment | None:
        """The environment of a public client-side ID (not a secret: it is in browser URLs)."""
        return self._by_client_id.get(client_side_id)

    def live(self, kind: str, key_hash: str, now_ms: int) -> bool:
        """Whether the credential with this hash still authorizes (not expired, not removed)."""
        env = self._by_hash.get((kind, key_hash))
        return env is not None and any(c.hash == key_hash for c in env.live(kind, now_ms))

    def find(self, kind: str, key: str, now_ms: int | None = None) -> Environment | None:
        env = self._by_hash.get((kind, hash_key(key)))
        if env is None:
            return None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return env if env.accepts(kind, key, now_ms) else None
