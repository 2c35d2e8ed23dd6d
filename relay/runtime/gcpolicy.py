"""Keeping the cyclic garbage collector's full passes short on a node holding many streams.

CPython 3.11 runs a full collection whenever the objects that survived into the oldest generation
have grown by a quarter since the last one, and a full pass visits every tracked object. An open
stream holds ~60 tracked objects for as long as it lives, so while 10,000 streams connected (a
reconnect storm after a deploy) a node ran full passes of 100-240 ms, eight in three seconds, and
a kill switch published meanwhile waited for them.

Streams' objects need no cyclic collection: under uvloop they are freed by reference counting
when the stream closes, as are relay's compiled flags and segments (tests/integration/
test_gc_policy.py and tests/runtime/test_gcpolicy.py check both). So every few hundred opened streams,
one collection clears the garbage made since the last batch (it visits only what is not frozen
yet: that batch) and `gc.freeze()` moves what is left, mostly those streams, out of every later
pass. An object frozen alive that later became part of a reference cycle would stay until the
process ends; `relay_gc_frozen_objects` on /metrics follows the open streams if none does.
(No periodic `gc.unfreeze()`: a full pass over everything, startup's frozen modules and rulesets
included, took 0.75-1.06 s at 10,000 streams.)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def collector_off() -> Iterator[None]:
    """The cyclic GC off for a while, as it was after. For work that allocates many objects and no
    cycles worth collecting: with the collector running, its passes over the growing heap made a
    10,000-flag load several times slower."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class GCPolicy:
    """Call `stream_opened` as streams open. The collector is process-wide, so a process builds one
    (the composition root, relay.app.create_app) and hands it to whatever opens streams."""

    def __init__(self, batch: int = 500) -> None:
        self.batch = batch  # streams opened between freezes
        self.freezes = 0
        self._opened = 0
        # Every collection's pause, by generation: [count, total seconds, longest].
        self.pauses: dict[int, list[float]] = {g: [0, 0.0, 0.0] for g in range(3)}
        self._started = 0.0

    def stream_opened(self) -> None:
        self._opened += 1
        if self._opened >= self.batch:
            self._opened = 0
            self.freezes += 1
            gc.collect()  # garbage made since the last batch is freed, not frozen
            gc.freeze()  # O(1): the generations' lists are spliced onto the permanent one

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
