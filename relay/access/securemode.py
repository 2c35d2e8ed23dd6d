"""Secure mode on a node: a browser request must carry `h`, the context's HMAC with a live SDK key.

The node opens each environment's sealed SDK keys (`relay.access.sealing`) once per environment record
and checks `h` against every live one in constant time, so during a rotation's grace period hashes
made with the old key still pass, and stop passing when it expires. A node that cannot open the
keys (no `secret_key`, or another one) refuses secure-mode requests with 503 and says why in its
log, once per environment and problem: it never lets a request through unchecked.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from relay.access.environments import Environment, secure_mode_hash
from relay.access.sealing import Sealer, SealError, aad, sealer_for
from relay.errors import InvalidSecureModeHash, SecureModeUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Key:
    hash: str  # of the SDK key: which credential a request's `h` was made with
    sdk_key: str
    expires_ms: int | None


class SecureMode:
    def __init__(self, secret_key: str | None) -> None:
        self._sealer: Sealer | None = sealer_for(secret_key)
        self._keys: dict[str, tuple[Environment, tuple[_Key, ...]]] = {}
        self._told: set[tuple[str, str]] = set()

    def _complain(self, env: Environment, problem: str, detail: str) -> None:
        if (env.key, problem) not in self._told:
            self._told.add((env.key, problem))
            logger.error('secure mode on "%s": %s', env.key, detail)

    def _opened(self, env: Environment) -> tuple[_Key, ...]:
        cached = self._keys.get(env.key)
        if cached is not None and cached[0] is env:
            return cached[1]
        keys = []
        for cred in env.sdk_keys:
            if cred.sealed is None or self._sealer is None:
                continue
            try:
                sdk_key = self._sealer.open(cred.sealed, aad(env.key, cred.hash))
            except SealError as e:
                self._complain(env, f"open:{cred.hash}", f"an SDK key cannot be opened: {e}")
                continue
            keys.append(_Key(cred.hash, sdk_key, cred.expires_ms))
        self._keys[env.key] = (env, tuple(keys))
        return tuple(keys)

    def check(self, env: Environment, fully_qualified_key: str, h: str | None, now_ms: int) -> str:
        """The hash of the SDK key that `h` was made with, or InvalidSecureModeHash (400); 503 if this
        node cannot check at all. Call only for environments in secure mode."""
        if self._sealer is None:
            self._complain(
                env, "no-secret", "refusing browser requests: this node has no secret_key (RELAY_SECRET_KEY)"
            )
            raise SecureModeUnavailable("secure mode is on and this node cannot check hashes (see its log)")
        live = [k for k in self._opened(env) if k.expires_ms is None or now_ms < k.expires_ms]
        if not live:
            self._complain(env, "no-key", "refusing browser requests: no live SDK key opens with this secret_key")
            raise SecureModeUnavailable("secure mode is on and this node cannot check hashes (see its log)")
        if not h:
            raise InvalidSecureModeHash("secure mode: the h parameter (the context's secure-mode hash) is required")
        given = h.strip().lower()
        match = None
        for key in live:  # every candidate compared, in constant time
            if hmac.compare_digest(secure_mode_hash(key.sdk_key, fully_qualified_key), given):
                match = key.hash
        if match is None:
            raise InvalidSecureModeHash("secure mode: the h parameter does not match this context")
        return match
