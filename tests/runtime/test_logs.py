"""Structured logs: one JSON object per line, extra fields included."""

from __future__ import annotations

import json
import logging

from relay.runtime.logs import JsonFormatter


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    record = logging.LogRecord("relay.store.sync", logging.WARNING, __file__, 1, "env %s behind", ("prod",), None)
    record.env = "prod"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["logger"] == "relay.store.sync"
    assert line["message"] == "env prod behind" and line["env"] == "prod"
    assert line["time"].endswith("Z")
