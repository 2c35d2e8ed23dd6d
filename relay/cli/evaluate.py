"""`relay eval` and `relay validate`: the evaluator on files, with no server or Redis."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from relay.errors import ValidationError
from relay.evaluation import Snapshot, parse_context, parse_items
from relay.wire import codec

DEMO = "demo"


def _read_items(source: str) -> Snapshot:
    raw = (
        resources.files("relay").joinpath("cli/demo_flags.json").read_bytes()
        if source == DEMO
        else Path(source).read_bytes()
    )
    flags, segments = parse_items(codec.loads(raw, what=source), default_version=1)
    return Snapshot(flags, segments)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.command("eval")
@click.option(
    "--flags",
    "source",
    default=DEMO,
    show_default=True,
    metavar="FILE",
    help='A {"flags": {...}, "segments": {...}} file, or "demo" for the built-in demo flags.',
)
@click.option(
    "--context",
    "context_json",
    required=True,
    metavar="JSON",
    help='The evaluation context, e.g. \'{"kind": "user", "key": "ann"}\' (or @FILE).',
)
@click.option("--flag", "flag_keys", multiple=True, metavar="KEY", help="Evaluate only these flags (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def eval_command(source: str, context_json: str, flag_keys: tuple[str, ...], as_json: bool) -> None:
    """Evaluate flags for one context, exactly as LaunchDarkly's SDKs would."""
    try:
        snapshot = _read_items(source)
        raw = Path(context_json[1:]).read_bytes() if context_json.startswith("@") else context_json
        context = parse_context(codec.loads(raw, what="--context"))
    except (ValidationError, OSError) as e:
        _fail(str(e))
        return
    keys = flag_keys or tuple(snapshot.flags)
    results: dict[str, Any] = {}
    for key in keys:
        results[key] = codec.evaluation_detail(snapshot.evaluate(key, context))
    if as_json:
        click.echo(codec.dumps(results, pretty=True).decode())
        return
    width = max((len(k) for k in results), default=4)
    click.echo(f"{'FLAG':<{width}}  {'VALUE':<14}  REASON")
    for key, detail in results.items():
        value = codec.dumps(detail["value"]).decode()
        reason = " ".join(f"{k}={v}" for k, v in detail["reason"].items() if v is not None)
        click.echo(f"{key:<{width}}  {value:<14}  {reason}")


@click.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def validate_command(path: str) -> None:
    """Check a flags file ({"flags", "segments"}) without writing anything."""
    try:
        flags, segments = parse_items(codec.loads(Path(path).read_bytes(), what=path), default_version=1)
    except ValidationError as e:
        _fail(str(e))
        return
    click.echo(f"ok: {len(flags)} flags, {len(segments)} segments")
