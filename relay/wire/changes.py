"""The change message: what a writer PUBLISHes on an environment's change channel (P:E:changes), and
the `Change` every node's sync makes of it. The only encoder and decoder of that message.

    {"version":12,"kind":"flag","key":"checkout","time":1718000000000,"item":{...}}   an item changed
    {"version":12,"kind":"epoch","key":"5f0c9a1e2b3d4c6f"}                            a new epoch began

The data version comes first and is spliced in by the write script (relay.store.storage._WRITE),
the only place it is known: the writer encodes the rest, `message_tail`.

The environments channel (P:@environments) carries an environment's record (JSON, read by
relay.access.environments) whenever it is created or changed, and, when it is deleted:

    {"key":"staging","deleted":true}                                                  `deletion`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.errors import ValidationError
from relay.evaluation import Flag, Segment
from relay.wire import codec

Item = Flag | Segment
EPOCH = "epoch"  # the kind of an epoch message
VERSION_PREFIX = b'{"version":'  # what the write script puts before the data version and the tail


@dataclass(frozen=True, slots=True)
class Change:
    """One item changed: its new state (a tombstone when deleted) at an environment data version."""

    env: str
    version: int
    kind: str  # "flag" or "segment"
    key: str
    item: Item
    written_ms: int | None = None  # when the writer wrote it (from the change message; None on a resync)


@dataclass(frozen=True, slots=True)
class ChangeMessage:
    """A change message as decoded, before its item is compiled (sync first checks the version)."""

    version: int
    kind: str  # "flag", "segment", or EPOCH
    key: str  # the item's key; in an epoch message, the new epoch
    item: Any = None  # the item's JSON, parsed (None in an epoch message, or if the writer left it out)
    written_ms: int | None = None

    @property
    def epoch(self) -> str | None:
        """The epoch an epoch message announces; None for an item's change."""
        return self.key if self.kind == EPOCH else None


def message_tail(kind: str, key: str, written_ms: int, item_json: bytes) -> bytes:
    """An item's change message after its data version: `,"kind":..,"key":..,"time":..,"item":..}`.

    The write script (relay.store.storage._WRITE) prepends VERSION_PREFIX and the data version it
    has just incremented: the version exists only inside the script, so the message is finished there."""
    return (
        b',"kind":' + codec.dumps(kind) + b',"key":' + codec.dumps(key)
        + b',"time":' + str(written_ms).encode() + b',"item":' + item_json + b"}"
    )  # fmt: skip


def epoch_message(version: int, epoch: str) -> bytes:
    """The whole message announcing a new epoch at the environment's current data version."""
    return VERSION_PREFIX + b'%d,"kind":"epoch","key":%s}' % (version, codec.dumps(epoch))


def read_message(data: bytes | str, *, what: str = "change message") -> ChangeMessage:
    """A change message, or ValidationError if it is not one (not JSON, or missing a field)."""
    body = codec.loads(data, what=what)
    try:
        version, kind, key = int(body["version"]), body["kind"], body["key"]
    except (KeyError, TypeError, ValueError) as e:
        raise ValidationError(what, f"not a change message ({type(e).__name__}: {e})") from None
    if not isinstance(kind, str) or not isinstance(key, str):
        raise ValidationError(what, "kind and key must be strings")
    written = body.get("time")
    return ChangeMessage(version, kind, key, body.get("item"), written if isinstance(written, int) else None)


def deletion(env: str) -> bytes:
    """The announcement of an environment's deletion on the environments channel."""
    return codec.dumps({"key": env, "deleted": True})


def deleted_environment(data: bytes) -> str | None:
    """The environment a message on the environments channel announces deleted, or None when it is
    a record (which has no `deleted` member; records always have a client-side ID)."""
    if b'"deleted"' not in data:  # (records are read by the caller; no second parse for them)
        return None
    try:
        body = codec.loads(data, what="environment announcement")
    except ValidationError:
        return None
    if isinstance(body, dict) and body.get("deleted") is True and isinstance(body.get("key"), str):
        return body["key"]
    return None
