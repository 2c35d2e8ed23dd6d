"""The change message: the exact bytes every writer publishes, and what sync reads back from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.errors import ValidationError
from relay.store import storage
from relay.store.writes import WritePath
from relay.wire import codec
from relay.wire.changes import VERSION_PREFIX, ChangeMessage, epoch_message, message_tail, read_message
from tests.integration.helpers import run_async, simple_flag, storage_for
from tests.integration.redis_server import RedisServer

ITEM = b'{"key":"check\\"out","version":3,"on":false}'


def test_an_item_s_tail_is_these_bytes() -> None:
    tail = message_tail("flag", 'check"out', 1718000000123, ITEM)
    assert tail == b',"kind":"flag","key":"check\\"out","time":1718000000123,"item":' + ITEM + b"}"


def test_an_epoch_message_is_these_bytes() -> None:
    assert epoch_message(12, "5f0c9a1e2b3d4c6f") == b'{"version":12,"kind":"epoch","key":"5f0c9a1e2b3d4c6f"}'
    assert epoch_message(0, "ab") == b'{"version":0,"kind":"epoch","key":"ab"}'


def test_the_write_script_splices_the_version_in_front_of_the_tail() -> None:
    # The script's half of the message: VERSION_PREFIX, the data version it incremented, the tail.
    assert f"'{VERSION_PREFIX.decode()}' .. dv .. ARGV[b + 6]" in storage._WRITE


def test_what_the_writers_encode_reads_back() -> None:
    message = VERSION_PREFIX + b"7" + message_tail("segment", "beta", 1718000000123, ITEM)
    assert read_message(message) == ChangeMessage(7, "segment", "beta", codec.loads(ITEM), 1718000000123)
    assert read_message(message).epoch is None
    epoch = read_message(epoch_message(12, "5f0c9a1e2b3d4c6f"))
    assert epoch == ChangeMessage(12, "epoch", "5f0c9a1e2b3d4c6f", None, None)
    assert epoch.epoch == "5f0c9a1e2b3d4c6f"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"version":"7","kind":"flag","key":"f","item":{}}', ChangeMessage(7, "flag", "f", {}, None)),
        (b'{"version":7,"kind":"flag","key":"f","time":"soon"}', ChangeMessage(7, "flag", "f", None, None)),
        (b'{"version":7,"kind":"flag","key":"f","time":5}', ChangeMessage(7, "flag", "f", None, 5)),
    ],
    ids=["version-as-string", "time-not-a-number", "no-item"],
)
def test_lenient_where_sync_always_was(data: bytes, expected: ChangeMessage) -> None:
    assert read_message(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b'{"kind":"flag","key":"f"}',
        b'{"version":"seven","kind":"flag","key":"f"}',
        b'{"version":7,"key":"f"}',
        b'{"version":7,"kind":"flag"}',
        b'{"version":7,"kind":"flag","key":5}',
        b'{"version":7,"kind":null,"key":"f"}',
    ],
    ids=["not-json", "array", "string", "no-version", "bad-version", "no-kind", "no-key", "key-number", "kind-null"],
)
def test_anything_else_is_a_validation_error_naming_the_channel(data: bytes) -> None:
    with pytest.raises(ValidationError) as e:
        read_message(data, what="relay:prod:changes")
    assert e.value.path == "relay:prod:changes"


def test_the_bytes_on_a_real_channel(tmp_path: Path) -> None:
    """Through the real write script and `new_epoch`: what a subscriber receives, byte for byte."""
    redis = RedisServer(tmp_path / "redis").start()

    async def scenario() -> list[bytes]:
        store = storage_for(redis.url)
        admin = WritePath(store, actor="tester", clock=lambda: 1718000000.123)
        await admin.create_environment("prod")
        pubsub = store.pubsub()
        await pubsub.subscribe("relay:prod:changes")
        await admin.put_item("prod", "flag", simple_flag("checkout"))
        await store.new_epoch("prod", "5f0c9a1e2b3d4c6f")
        out: list[bytes] = []
        while len(out) < 2:
            message: dict[str, Any] | None = await pubsub.get_message(timeout=2)
            if message is not None:
                out.append(message["data"])
        await pubsub.aclose()
        return out

    try:
        item_change, epoch = run_async(scenario())
    finally:
        redis.stop()
    item = codec.loads(item_change)["item"]
    assert item_change == VERSION_PREFIX + b"1" + message_tail("flag", "checkout", 1718000000123, codec.dumps(item))
    assert read_message(item_change) == ChangeMessage(1, "flag", "checkout", item, 1718000000123)
    assert epoch == epoch_message(1, "5f0c9a1e2b3d4c6f")
