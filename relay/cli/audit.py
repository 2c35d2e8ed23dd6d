"""`relay audit`: who changed what, when, and the diff; `relay audit revert`: undo one change."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from relay.cli.api import ApiWritePath
from relay.cli.common import actor_option, comment_option, echo_json, json_option, parse_since, run, write_path
from relay.cli.show import show_value
from relay.store.audit_log import revert, who
from relay.store.plan import MISSING, WriteResult, diff
from relay.store.storage import Storage
from relay.wire import codec


@click.group("audit", invoke_without_command=True)
@click.option("--env", "env", envvar="RELAY_ENV", metavar="ENV", help="Environment key (default: $RELAY_ENV).")
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
    [direct Redis] (a claimed name, with the OS user that wrote it when that differs)."""
    if ctx.invoked_subcommand is not None:
        return
    if env is None:
        raise click.UsageError("Missing option '--env' (or $RELAY_ENV).")
    since_ms = parse_since(since) if since else None
    entries = run(lambda storage: write_path(storage, "").audit(env, key=key, since_ms=since_ms, limit=limit))
    if as_json:
        echo_json(
            [
                {
                    **e,
                    "before": codec.loads(e["before"]) if e.get("before") else None,
                    "after": codec.loads(e["after"]) if e.get("after") else None,
                }
                for e in entries
            ]
        )
        return
    for e in entries:
        when = datetime.fromtimestamp(int(e["time"]) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        version = f" (data version {e['version']})" if e.get("version") else ""
        comment = f": {e['comment']}" if e.get("comment") else ""
        click.echo(f"{when}  {e['actor']}  {e['action']} {e['kind']} {e['key']}{version}{comment}  {who(e)}")
        if e["kind"] == "environment":  # the action says it all
            continue
        before = codec.loads(e["before"]) if e.get("before") else MISSING
        after = codec.loads(e["after"]) if e.get("after") else MISSING
        if before is MISSING:
            click.echo("    created")
        elif isinstance(after, dict) and after.get("deleted"):
            click.echo("    deleted")
        else:
            for path, old, new in diff(before, after):
                click.echo(f"    {path}: {show_value(old)} -> {show_value(new)}")


@audit_command.command("revert")
@click.argument("entry")
@click.option("--env", "env", envvar="RELAY_ENV", metavar="ENV", help="Environment key (default: $RELAY_ENV).")
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

    async def go(target: Storage) -> WriteResult:
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
