"""Client-side streams: evaluated flags pushed to browsers and mobile apps.

Connections are grouped by distinct context (and audience and reason option). A change is
re-evaluated once per group, only for the flags it can affect (the changed flags, flags using a
changed segment, and their dependants through prerequisites), and each group gets one encoded
`patch`/`delete` event for its connections. LaunchDarkly's Relay sends only `ping` here, and every
browser then re-fetches at once; pushing evaluated changes avoids that stampede.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.evaluation import Context, Evaluation, Flag, evaluate
from relay.fanout.hub import Sink
from relay.fanout.registry import Registry
from relay.store.ruleset import Ruleset
from relay.wire import codec, sse
from relay.wire.changes import Change
from relay.wire.clientside import Audience, context_key, flag_state


@dataclass(eq=False)
class Group:
    env: str
    ctx: Context
    audience: Audience
    with_reasons: bool
    results: dict[str, Evaluation]
    key: tuple[Any, ...] = ()
    _put: tuple[int, bytes] | None = None

    def put(self, rs: Ruleset) -> bytes:
        if self._put is None or self._put[0] != rs.version:
            body = {k: flag_state(rs.flags[k], r, self.with_reasons) for k, r in self.results.items()}
            self._put = (rs.version, sse.event("put", codec.dumps(body)))
        return self._put[1]


def affected_flags(rs: Ruleset, changes: list[Change]) -> set[str]:
    """Flags whose results the changes can alter."""
    flags = {c.key for c in changes if c.kind == "flag"}
    segments = {c.key for c in changes if c.kind == "segment"}
    while segments:  # segments nesting a changed segment changed too
        more = {k for k, s in rs.segments.items() if not s.deleted and k not in segments and s.segment_keys & segments}
        if not more:
            break
        segments |= more
    live = {k: f for k, f in rs.flags.items() if not f.deleted}
    if segments:
        flags |= {k for k, f in live.items() if f.body.segment_keys & segments}
    while True:  # and flags with an affected prerequisite
        more = {k for k, f in live.items() if k not in flags and any(p.key in flags for p in f.body.prerequisites)}
        if not more:
            return flags
        flags |= more


class ClientStreams(Registry[Group, Sink]):
    """Evaluated client streams, registered by their context's group (relay.fanout.registry drops
    the slow ones, writes the keep-alives and ends them)."""

    def __init__(self, max_context_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__()
        self._groups: dict[str, dict[tuple[Any, ...], Group]] = {}
        self.evaluations = 0  # re-evaluations done for changes: once per group, not per connection
        # The memory budget of distinct contexts (Settings.client_stream_context_bytes): each group
        # counts its context's serialized size (context_key) once, however many streams share it.
        # A group's results and put cost a multiple of that, so this bounds them too.
        self.max_context_bytes = max_context_bytes
        self.context_bytes = 0
        self.refused = 0  # streams refused for the budget

    def admits(self, env: str, ctx: Context, audience: Audience, with_reasons: bool) -> bool:
        """Whether a stream for this context fits: its group exists already, or its context fits in
        what is left of the budget. Checked before the response starts; the group is made when the
        stream sends its first event, with no await in between on relay's side."""
        key = (audience.__name__, with_reasons, context_key(ctx))
        if key in self._groups.get(env, ()) or self.context_bytes + len(key[2]) <= self.max_context_bytes:
            return True
        self.refused += 1
        return False

    def group(self, rs: Ruleset, ctx: Context, audience: Audience, with_reasons: bool) -> Group:
        """The group of this context (created, and evaluated, by its first connection)."""
        groups = self._groups.setdefault(rs.env, {})
        key = (audience.__name__, with_reasons, context_key(ctx))
        group = groups.get(key)
        if group is None:
            results = rs.snapshot.evaluate_all(ctx, audience)
            group = groups[key] = Group(rs.env, ctx, audience, with_reasons, results, key)
            self.context_bytes += len(key[2])
        return group

    def attach(self, group: Group, sink: Sink) -> Group:
        """Register `sink` with the group of its context, and return that group: `group` itself, or,
        if `group` emptied and was forgotten since this stream's first event and a newer group of
        the same context was made meanwhile, the newer one (changes reach only the groups held
        here, so a stream must never sit in a forgotten one, nor push a live one out). The stream
        re-reads its snapshot after attaching (relay.server.streaming), from whichever it joined."""
        groups = self._groups.setdefault(group.env, {})
        current = groups.get(group.key)
        if current is None:  # (forgotten since: counted again while it is held again)
            current = groups[group.key] = group
            self.context_bytes += len(group.key[2])
        self._add(current, sink)
        return current

    def detach(self, group: Group, sink: Sink) -> None:
        self._remove(group, sink)

    def _env_of(self, key: Group) -> str:
        return key.env

    def _emptied(self, key: Group) -> None:
        groups = self._groups.get(key.env, {})
        if groups.get(key.key) is key:  # not a newer group of the same context
            del groups[key.key]
            self.context_bytes -= len(key.key[2])

    def count(self, env: str | None = None) -> tuple[int, int]:
        """(connections, distinct contexts)."""
        groups = [g for e, gs in self._groups.items() if env is None or e == env for g in gs.values()]
        return sum(len(self._sinks.get(g, ())) for g in groups), len(groups)

    def on_change(self, rs: Ruleset, changes: list[Change]) -> None:
        groups = self._groups.get(rs.env)
        if not groups or not changes:
            return
        version = max(c.version for c in changes)
        keys = sorted(affected_flags(rs, changes))
        for group in list(groups.values()):
            events = [e for key in keys if (e := self._reevaluate(rs, group, key)) is not None]
            if events:
                self._write(group, b"".join(events), version)

    def _write(self, group: Group, payload: bytes, version: int) -> None:
        for sink in list(self._sinks.get(group, ())):
            if version > sink.since and not sink.write(payload):
                self._drop(group, sink)

    def _reevaluate(self, rs: Ruleset, group: Group, key: str) -> bytes | None:
        flag: Flag | None = rs.flags.get(key)
        old = group.results.get(key)
        if flag is None or flag.deleted or not group.audience(flag):
            if old is None:
                return None
            del group.results[key]
            version = flag.version if flag is not None else 0
            return sse.event("delete", codec.dumps({"key": key, "version": version}))
        self.evaluations += 1
        new = evaluate(flag, group.ctx, rs.snapshot)
        group.results[key] = new
        if old is not None and old == new:
            return None  # same result: nothing for the browser to do
        return sse.event("patch", codec.dumps({"key": key, **flag_state(flag, new, group.with_reasons)}))
