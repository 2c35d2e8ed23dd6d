"""Results of evaluation and the compiled forms of flags and segments.

Compiled items are built once by `relay.evaluation.compile` when an item is loaded or changed;
evaluation then only walks them. Every outcome that does not depend on the context (off,
targets, fixed-variation rules, each rollout bucket, prerequisite failures) is a prebuilt
`Evaluation`, so evaluating mostly returns an existing object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from relay.evaluation.context import Context


class ReasonKind(StrEnum):
    OFF = "OFF"
    FALLTHROUGH = "FALLTHROUGH"
    TARGET_MATCH = "TARGET_MATCH"
    RULE_MATCH = "RULE_MATCH"
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"
    ERROR = "ERROR"


class ErrorKind(StrEnum):
    MALFORMED_FLAG = "MALFORMED_FLAG"
    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    USER_NOT_SPECIFIED = "USER_NOT_SPECIFIED"
    CLIENT_NOT_READY = "CLIENT_NOT_READY"
    WRONG_TYPE = "WRONG_TYPE"
    EXCEPTION = "EXCEPTION"


@dataclass(frozen=True, slots=True)
class Reason:
    kind: ReasonKind
    rule_index: int | None = None
    rule_id: str | None = None
    in_experiment: bool = False
    prerequisite_key: str | None = None
    error_kind: ErrorKind | None = None
    big_segments_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The reason exactly as LaunchDarkly's Python SDK reports it."""
        out: dict[str, Any] = {"kind": str(self.kind)}
        if self.kind is ReasonKind.RULE_MATCH:
            out["ruleIndex"] = self.rule_index
            out["ruleId"] = self.rule_id
        elif self.kind is ReasonKind.PREREQUISITE_FAILED:
            out["prerequisiteKey"] = self.prerequisite_key
        elif self.kind is ReasonKind.ERROR:
            out["errorKind"] = str(self.error_kind)
        if self.in_experiment:
            out["inExperiment"] = True
        if self.big_segments_status is not None:
            out["bigSegmentsStatus"] = self.big_segments_status
        return out


@dataclass(frozen=True, slots=True)
class Evaluation:
    value: Any
    variation: int | None
    reason: Reason
    prerequisites: tuple[str, ...] = ()
    # A slot for an encoder above the core to cache what it makes of this result (unset until it
    # does; not part of the value). The core never reads or writes it.
    memo: object = field(init=False, repr=False, compare=False)

    @property
    def in_experiment(self) -> bool:
        return self.reason.in_experiment

    @property
    def is_error(self) -> bool:
        return self.reason.kind is ReasonKind.ERROR

    def with_big_segments_status(self, status: str) -> Evaluation:
        return replace(self, reason=replace(self.reason, big_segments_status=status))


def error(kind: ErrorKind) -> Evaluation:
    return Evaluation(None, None, Reason(ReasonKind.ERROR, error_kind=kind))


MALFORMED = error(ErrorKind.MALFORMED_FLAG)


def malformed(prerequisites: tuple[str, ...]) -> Evaluation:
    """MALFORMED_FLAG, still listing the prerequisites evaluated on the way (as the SDKs report)."""
    return Evaluation(None, None, MALFORMED.reason, prerequisites) if prerequisites else MALFORMED


FLAG_NOT_FOUND = error(ErrorKind.FLAG_NOT_FOUND)
USER_NOT_SPECIFIED = error(ErrorKind.USER_NOT_SPECIFIED)


class EvalStateLike(Protocol):
    """What compiled clauses use of the evaluation's state (relay.evaluation.state.EvalState, the
    one implementation, which is what every compiled function is handed). A Protocol so that the
    compiled items below can name the state's type without importing it: the state names them."""

    segments: Mapping[str, Segment]
    memo: dict[Segment, bool] | None  # segment verdicts for this context, when kept

    def segment_matches(self, segment: Segment, ctx: Context) -> bool: ...


# A compiled clause: does the context satisfy it? May raise MalformedFlag.
ClauseFn = Callable[["Context", EvalStateLike], bool]
# A compiled variation-or-rollout: the result for a context. May raise MalformedFlag.
OutcomeFn = Callable[["Context"], Evaluation]
# A whole compiled flag (relay.evaluation.generated.codegen): its result for a context. May raise MalformedFlag.
FlagRun = Callable[["Context", EvalStateLike], Evaluation]
SegmentCheck = Callable[["Context", EvalStateLike], bool]  # membership of a segment naming no other segment


class MalformedFlag(Exception):
    """Raised inside evaluation where LaunchDarkly aborts the whole evaluation."""


@dataclass(frozen=True, slots=True)
class Prerequisite:
    key: str
    variation: int
    failed: Evaluation  # the flag's result when this prerequisite fails


@dataclass(frozen=True, slots=True)
class ContextTarget:
    kind: str
    values: frozenset[str]
    result: Evaluation


@dataclass(frozen=True, slots=True)
class FlagBody:
    """What evaluation walks; compiled on load, or on first use for items relay wrote itself."""

    run: FlagRun = field(default=lambda ctx, state: MALFORMED, repr=False)  # the whole evaluation
    prerequisites: tuple[Prerequisite, ...] = ()  # also in `run`: for MALFORMED's prerequisite list
    variations: tuple[Any, ...] = field(default=(), repr=False)
    segment_keys: frozenset[str] = frozenset()  # segments any clause names (for change impact)
    needs_state: bool = False  # evaluation can reach other items (prerequisites, segments)
    rule_track_events: tuple[bool, ...] = ()


# A flag that could not be compiled (hand-edited data in Redis): every evaluation is MALFORMED_FLAG.
BROKEN = FlagBody()


class Flag:
    """A flag: its header (what streams and filters need) and its compiled body."""

    __slots__ = (
        "_body",
        "_compiler",
        "client_side",
        "data",
        "debug_events_until_date",
        "deleted",
        "key",
        "mobile",
        "on",
        "track_events",
        "track_events_fallthrough",
        "version",
    )

    def __init__(
        self,
        key: str,
        version: int,
        deleted: bool,
        data: dict[str, Any],
        *,
        on: bool = False,
        client_side: bool = False,
        mobile: bool = True,
        track_events: bool = False,
        track_events_fallthrough: bool = False,
        debug_events_until_date: int | float | None = None,
        body: FlagBody | None = None,
        compiler: Callable[[], FlagBody] | None = None,
    ) -> None:
        self.key = key
        self.version = version
        self.deleted = deleted
        self.data = data  # canonical JSON
        self.on = on
        self.client_side = client_side
        self.mobile = mobile
        self.track_events = track_events
        self.track_events_fallthrough = track_events_fallthrough
        self.debug_events_until_date = debug_events_until_date
        self._body = body if body is not None or compiler is not None else BROKEN
        self._compiler = compiler

    @property
    def body(self) -> FlagBody:
        body = self._body
        if body is None:
            body = self._body = self._compiler()  # type: ignore[misc]
            self._compiler = None
        return body

    @property
    def compiled(self) -> bool:
        return self._body is not None

    def __repr__(self) -> str:
        state = "deleted" if self.deleted else ("on" if self.on else "off")
        return f"Flag({self.key!r}, version={self.version}, {state})"


@dataclass(frozen=True, slots=True)
class SegmentRule:
    clauses: tuple[ClauseFn, ...]
    weight: int | None
    bucket: Callable[[Context], float] | None  # bucket value for weighted rules


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)  # identity hashing: segments key per-request memos
class Segment:
    key: str
    version: int
    deleted: bool
    data: dict[str, Any] = field(repr=False, compare=False)
    included: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    included_contexts: tuple[tuple[str, frozenset[str]], ...] = ()
    excluded_contexts: tuple[tuple[str, frozenset[str]], ...] = ()
    rules: tuple[SegmentRule, ...] = ()
    unbounded: bool = False
    unbounded_context_kind: str = "user"
    generation: int | None = None
    segment_keys: frozenset[str] = frozenset()
    # Generated by relay.evaluation.generated.codegen for a live, bounded segment that names no other segment.
    check: SegmentCheck | None = field(default=None, repr=False)
