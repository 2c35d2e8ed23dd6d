"""`relay audit`: who changed what, when, and the diff; where the kept history begins; an archive;
`relay audit revert`: undo one change."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from relay.cli.api import ApiClient, ApiWritePath
from relay.cli.common import actor_option, comment_option, echo_json, json_option, parse_since, run, write_path
from relay.cli.show import show_value
from relay.store import audit_history
from relay.store.audit_history import AuditTrim
from relay.store.audit_log import revert, who
from relay.store.plan import MISSING, WriteResult, diff
from relay.store.storage import Storage
from relay.store.writes import WritePath
from relay.wire import codec

_ITEM_KINDS = ("flag", "segment")  # the entries with a before and an after to compare


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def entry_json(e: dict[str, str]) -> dict[str, Any]:
    """An entry as `--json` and the export show it: times and data versions as numbers (null for an
    environment's entries, which have no data version), before and after as JSON."""
    return {
        **e,
        "version": int(e["version"]) if e.get("version") else None,
        "time": int(e["time"]) if e.get("time") else None,
        "before": codec.loads(e["before"]) if e.get("before") else None,
        "after": codec.loads(e["after"]) if e.get("after") else None,
    }


def trim_notice(trim: AuditTrim) -> str:
    assert trim.first_ms is not None
    return f"history before {_when(trim.first_ms)} was trimmed (cap {trim.cap})"


env_or_subcommand = click.option(
    "--env", "env", envvar="RELAY_ENV", metavar="ENV", help="Environment key (default: $RELAY_ENV)."
)


@click.group("audit", invoke_without_command=True)
@env_or_subcommand
@click.option("--flag", "key", metavar="KEY", help="Only changes to this flag (or segment) key.")
@click.option(
    "--since", metavar="T", help="Only changes after T: 2026-11-26T10:00:00Z, 2026-11-26, or an age: 30m, 2h, 7d."
)
@click.option("--limit", default=50, show_default=True, help="At most this many entries, newest first.")
@json_option
@click.pass_context
def audit_command(
    ctx: click.Context, env: str | None, key: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """Who changed what and when, with the before/after diff; `relay audit revert ENTRY` undoes one change.

    Each entry says how its actor was established: [API, token tok_…] (the token's owner), or
    [direct Redis] (a claimed name, with the OS user that wrote it when that differs).
    The log is capped (audit_max_entries): when older entries were trimmed and the answer would
    have reached them, it ends with "history before … was trimmed (cap N)". `relay audit export`
    archives the whole log."""
    if ctx.invoked_subcommand is not None:
        return
    if env is None:
        raise click.UsageError("Missing option '--env' (or $RELAY_ENV).")
    since_ms = parse_since(since) if since else None

    async def read(target: Storage | ApiClient) -> tuple[list[dict[str, Any]], AuditTrim | None]:
        entries = await write_path(target, "").audit(env, key=key, since_ms=since_ms, limit=limit)
        # (Through the API the trim point is not known here: the API's audit pages end where it ends.)
        return entries, None if isinstance(target, ApiClient) else await audit_history.trim(target, env)

    entries, trim = run(read)
    # Trimmed entries matter only where the answer reached the oldest kept one (not a full page).
    reached_start = len(entries) < limit
    if as_json:
        echo_json([entry_json(e) for e in entries])
    else:
        for e in entries:
            _echo_entry(e)
    if reached_start and trim is not None and trim.hides(since_ms):
        click.echo(trim_notice(trim), err=as_json)  # (JSON on stdout stays JSON)


def _echo_entry(e: dict[str, str]) -> None:
    version = f" (data version {e['version']})" if e.get("version") else ""
    comment = f": {e['comment']}" if e.get("comment") else ""
    click.echo(
        f"{_when(int(e['time']))}  {e['actor']}  {e['action']} {e['kind']} {e['key']}{version}{comment}  {who(e)}"
    )
    if e["kind"] not in _ITEM_KINDS:  # an environment's (a key rotation, say): the action says it all
        return
    before = codec.loads(e["before"]) if e.get("before") else MISSING
    after = codec.loads(e["after"]) if e.get("after") else MISSING
    if before is MISSING:
        click.echo("    created")
    elif isinstance(after, dict) and after.get("deleted"):
        click.echo("    deleted")
    else:
        for path, old, new in diff(before, after):
            click.echo(f"    {path}: {show_value(old)} -> {show_value(new)}")


@contextmanager
def _output(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with Path(path).open("wb") as f:
        yield f


@audit_command.command("export")
@env_or_subcommand
@click.argument("path", metavar="FILE.jsonl")
def export(env: str | None, path: str) -> None:
    """Write an environment's whole audit log to FILE.jsonl (- for stdout): one entry a line, oldest
    first, as `relay audit --json` shows them. Streamed a thousand entries at a time, with a
    progress bar on a terminal. Archive it before the cap trims it."""
    if env is None:
        raise click.UsageError("Missing option '--env' (or $RELAY_ENV).")
    shown = sys.stderr.isatty() and path != "-"

    async def go(storage: Storage) -> tuple[int, AuditTrim]:
        if not await storage.audit_exists(env):
            await WritePath(storage, actor="").environment(env)  # unknown: a "not found" naming the known ones
        total, written = await audit_history.length(storage, env), 0
        bar = click.progressbar(length=total, label="exporting", file=sys.stderr) if shown else None
        with _output(path) as out, bar if bar is not None else nullcontext():
            async for chunk in audit_history.entries(storage, env):
                out.write(b"".join(codec.dumps(entry_json(e)) + b"\n" for e in chunk))
                written += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        return written, await audit_history.trim(storage, env)

    written, trim = run(go)
    since = f", from {_when(trim.first_ms)}" if trim.first_ms is not None else ""
    click.echo(f"exported {written} audit entries of {env} to {path}{since}", err=True)
    if trim.hides():
        click.echo(trim_notice(trim), err=True)


@audit_command.command("revert")
@click.argument("entry")
@env_or_subcommand
@actor_option
@comment_option
@json_option
@click.pass_context
def revert_command(ctx: click.Context, entry: str, env: str | None, actor: str, comment: str, as_json: bool) -> None:
    """Write ENTRY's "before" back as a new, audited change (a delete for a creation), only if its item is
    still at ENTRY's "after" version (else exit 4: revert the later changes first). ENTRY is an entry's id
    (relay audit --json)."""
    env = env or (ctx.parent.params.get("env") if ctx.parent else None)
    if env is None:
        raise click.UsageError("Missing option '--env' (or $RELAY_ENV).")

    async def go(target: Storage | ApiClient) -> WriteResult:
        path = write_path(target, actor)
        if isinstance(path, ApiWritePath):
            return await path.revert(env, entry, comment=comment)
        return await revert(path, env, entry, comment=comment)

    result = run(go)
    if as_json:
        echo_json({"items": result.items, "data_versions": result.data_versions})
        return
    for item in result.items:
        state = "deleted" if item.get("deleted") else f"version {item['version']}"
        click.echo(
            f"reverted {entry}: {item['key']} is back as it was ({state}, data version {result.data_versions[-1]})"
        )
