"""Logging, configured once by the CLI: plain text for people, JSON lines for machines."""

from __future__ import annotations

import logging
import time
from typing import Any

from relay.wire import codec

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra={...}` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return codec.dumps(out, default=str).decode()


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class Throttled:
    """At most one log line per `interval` seconds for each kind of trouble, saying how many like it
    were left out since the last: a failing dependency hit by every request must cost the log one
    line every few seconds, not a line (or a traceback) per request."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, clock: Any = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}  # kind -> when its last line was written
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: Any) -> bool:
        """Log `message % args` at warning unless a line of this `kind` was written in the last
        `interval` seconds (then count it); True if it was written."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        left_out = self._suppressed.pop(kind, 0)
        if left_out:
            message += " (%d more like this in the last %.0f s)"
            args = (*args, left_out, now - last if last is not None else self.interval)
        self.logger.warning(message, *args)
        return True
