"""`relay eval` and `relay validate`: the evaluator on an environment's live flags in Redis or on a file,
and the write path's checks on a file (no server, and for files no Redis)."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from relay.cli.common import run, settings
from relay.cli.show import echo_warnings, strict_option
from relay.errors import ValidationError
from relay.evaluation import DataWarning, Snapshot, parse_context, parse_items
from relay.store.checks import MAX_REPORTED, check_document
from relay.store.storage import Storage
from relay.store.writes import WritePath
from relay.wire import codec

DEMO = "demo"


def _read_items(source: str) -> Snapshot:
    raw = (
        resources.files("relay").joinpath("cli/demo_flags.json").read_bytes()
        if source == DEMO
        else Path(source).read_bytes()
    )
    # As the write path takes it: what LaunchDarkly's SDKs evaluate is evaluated as they do.
    warnings: list[DataWarning] = []
    flags, segments = parse_items(codec.loads(raw, what=source), default_version=1, warnings=warnings)
    return Snapshot(flags, segments)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


async def _live(storage: Storage, env: str) -> tuple[Snapshot, int]:
    """An environment's flags and segments as Redis holds them now, and its data version."""
    writer = WritePath(storage, actor="")
    flags, segments = parse_items(await writer.export(env), strict=False)
    return Snapshot(flags, segments), (await storage.versions([env]))[env]


@click.command("eval")
@click.option(
    "--env",
    "env",
    envvar="RELAY_ENV",
    metavar="ENV",
    help="Evaluate this environment's live flags, read from Redis (default: $RELAY_ENV; --file wins).",
)
@click.option(
    "--file",
    "--flags",
    "source",
    metavar="FILE",
    help='A {"flags": {...}, "segments": {...}} file, or "demo" for the built-in demo flags '
    "(with neither --env nor --file: demo).",
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
def eval_command(
    env: str | None, source: str | None, context_json: str, flag_keys: tuple[str, ...], as_json: bool
) -> None:
    """Evaluate flags for one context, exactly as LaunchDarkly's SDKs would: an environment's live
    flags in Redis (--env), or a file's (--file)."""
    try:
        raw = Path(context_json[1:]).read_bytes() if context_json.startswith("@") else context_json
        context = parse_context(codec.loads(raw, what="--context"))
        snapshot = _read_items(source or DEMO) if source or not env else None
    except (ValidationError, OSError) as e:
        _fail(str(e))
        return
    if snapshot is None:
        assert env is not None
        snapshot, version = run(lambda storage: _live(storage, env))
        click.echo(f"{env}'s live flags in Redis, at data version {version}", err=True)
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
@strict_option
def validate_command(path: str, strict: bool | None) -> None:
    """Check a flags file ({"flags", "segments"}) as `relay flags import` would, writing nothing:
    its top level, then every item with every check the import runs. Lists every error (the
    first 100), and exits 2 if there is any; lists every warning (what the import writes but
    warns about), exiting 0 if there are only warnings. With --strict warnings are errors."""
    try:
        doc = codec.loads(Path(path).read_bytes(), what=path)
    except ValidationError as e:
        _fail(str(e))
        return
    s = settings()
    warnings: list[DataWarning] | None = None if (s.strict_writes if strict is None else strict) else []
    items, errors = check_document(doc, max_item_bytes=s.max_item_bytes, warnings=warnings)
    echo_warnings(warnings or [])
    if errors:
        for error in errors[:MAX_REPORTED]:
            click.echo(f"error: {error}", err=True)
        if len(errors) > MAX_REPORTED:
            click.echo(f"… and {len(errors) - MAX_REPORTED} more", err=True)
        _fail(f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {path}; it would not import")
        return
    noted = f" ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else ""
    click.echo(f"ok: {len(items['flag'])} flags, {len(items['segment'])} segments{noted}")
