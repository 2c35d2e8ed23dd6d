"""The pure evaluation core: LaunchDarkly's flag data model, compiled once, evaluated fast.

See docs/evaluation-api.md. Nothing in this package does I/O.
"""

from relay.evaluation.compile import KEY_PATTERN, parse_flag
from relay.evaluation.context import Context, SingleContext, parse_context
from relay.evaluation.evaluator import Snapshot, evaluate
from relay.evaluation.model import ErrorKind, Evaluation, Flag, Reason, ReasonKind, Segment
from relay.evaluation.reader import DataWarning
from relay.evaluation.segments import parse_items, parse_segment

__all__ = [
    "KEY_PATTERN",
    "Context",
    "DataWarning",
    "ErrorKind",
    "Evaluation",
    "Flag",
    "Reason",
    "ReasonKind",
    "Segment",
    "SingleContext",
    "Snapshot",
    "evaluate",
    "parse_context",
    "parse_flag",
    "parse_items",
    "parse_segment",
]
