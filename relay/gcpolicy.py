"""Keeping the cyclic garbage collector's full passes short on a node holding many streams.

CPython 3.11 runs a full collection whenever the objects that survived into the oldest generation
have grown by a quarter since the last one, and a full pass visits every tracked object. An open
stream holds ~60 tracked objects for as long as it lives, so while 10,000 streams connected (a
reconnect storm after a deploy) a node ran full passes of 100-240 ms, eight in three seconds, and
a kill switch published meanwhile waited for them.

Streams' objects need no cyclic collection: under uvloop they are freed by reference counting
when the stream closes (tests/integration/test_gc_policy.py counts the garbage after churn). So as
streams open, they are moved out of the collector's sight in batches with `gc.freeze()`. What a
freeze could hide from the collector for good, an object alive at the moment that later ends up in
a reference cycle, is handed back periodically: `gc.unfreeze()`, one full collection at a time of
our choosing, and a freeze again.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


class GCPolicy:
    """Process-wide (the collector is): `stream_opened` as streams open, `tick` on a timer."""

    def __init__(
        self,
        batch: int = 500,
        thaw_interval: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.batch = batch  # streams opened between freezes (a freeze costs the same at any size)
        self.thaw_interval = thaw_interval
        self.clock = clock
        self.freezes = 0
        self.thaws = 0
        self._opened = 0
        self._last_thaw = clock()
        # Every collection's pause, by generation: [count, total seconds, longest].
        self.pauses: dict[int, list[float]] = {g: [0, 0.0, 0.0] for g in range(3)}
        self._started = 0.0

    def stream_opened(self) -> None:
        self._opened += 1
        if self._opened >= self.batch:
            self._opened = 0
            self.freezes += 1
            gc.freeze()  # O(1): the generations' lists are spliced onto the permanent one

    def tick(self) -> None:
        if self.clock() - self._last_thaw < self.thaw_interval:
            return
        self._last_thaw = self.clock()
        self.thaws += 1
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        entry = self.pauses[info["generation"]]
        entry[0] += 1
        entry[1] += took
        entry[2] = max(entry[2], took)

    def watch_pauses(self) -> Callable[[], None]:
        """Time every collection (for /metrics); returns the undo."""
        gc.callbacks.append(self._on_gc)
        return lambda: gc.callbacks.remove(self._on_gc) if self._on_gc in gc.callbacks else None


# One per process: there is one collector.
policy = GCPolicy()
