"""Open streams by the credential that authorized them, ended when it stops being valid.

A stream is authorized once, when it opens. When its key is rotated out, the stream keeps working
through the grace period (the SDK is told nothing and keeps its data current); once the grace
period ends, or the key or environment is removed, the node ends the stream, and the SDK's
reconnection with that key gets 401. One timer checks each distinct credential (not each stream)
every `INTERVAL` seconds while any stream is tracked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from relay.fanout.hub import Sink

logger = logging.getLogger(__name__)

Attach = Callable[[Sink], None]


class StreamCredentials:
    INTERVAL = 1.0

    def __init__(self, valid: Callable[[str, str], bool]) -> None:
        self._valid = valid  # (kind, key hash) -> whether it still authorizes
        self._streams: dict[tuple[str, str], dict[Sink, Attach]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.closed = 0

    def guard(self, kind: str, key_hash: str, attach: Attach, detach: Attach) -> tuple[Attach, Attach]:
        """`attach`/`detach` for a stream authorized by this credential: they also track it."""
        cred = (kind, key_hash)

        def on_attach(sink: Sink) -> None:
            attach(sink)
            self._streams.setdefault(cred, {})[sink] = detach
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.INTERVAL, self._check)

        def on_detach(sink: Sink) -> None:
            detach(sink)
            sinks = self._streams.get(cred)
            if sinks is not None:
                sinks.pop(sink, None)
                if not sinks:
                    del self._streams[cred]

        return on_attach, on_detach

    def count(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def _check(self) -> None:
        self._timer = None
        for cred, sinks in list(self._streams.items()):
            if self._valid(*cred):
                continue
            del self._streams[cred]
            for sink, detach in list(sinks.items()):
                detach(sink)
                sink.end()
            self.closed += len(sinks)
            envs = ", ".join(sorted({s.env for s in sinks}))
            logger.info("ended %d stream(s) on %s: their %s key expired or was removed", len(sinks), envs, cred[0])
        if self._streams:
            self._timer = asyncio.get_running_loop().call_later(self.INTERVAL, self._check)
