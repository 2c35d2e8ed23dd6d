"""`relay audit`: who changed what, when, and the diff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from relay.cli.common import echo_json, env_option, json_option, parse_since, run
from relay.store.writes import WritePath
from relay.wire import codec


def diff(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs; `version` changes are left out as noise."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            if path == "" and key == "version":
                continue
            sub = f"{path}.{key}" if path else str(key)
            out += diff(before.get(key, _MISSING), after.get(key, _MISSING), sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += diff(b, a, f"{path}[{i}]")
        return out
    return [] if before == after else [(path or "(item)", before, after)]


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _show(value: Any) -> str:
    return repr(value) if value is _MISSING else codec.dumps(value).decode()


@click.command("audit")
@env_option
@click.option("--flag", "key", metavar="KEY", help="Only changes to this flag (or segment) key.")
@click.option(
    "--since", metavar="T", help="Only changes after T: 2026-11-26T10:00:00Z, 2026-11-26, or an age: 30m, 2h, 7d."
)
@click.option("--limit", default=50, show_default=True, help="At most this many entries, newest first.")
@json_option
def audit_command(env: str, key: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Who changed what and when, with the before/after diff."""
    since_ms = parse_since(since) if since else None
    entries = run(lambda storage: WritePath(storage, actor="").audit(env, key=key, since_ms=since_ms, limit=limit))
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
        click.echo(f"{when}  {e['actor']}  {e['action']} {e['kind']} {e['key']}{version}{comment}")
        before = codec.loads(e["before"]) if e.get("before") else _MISSING
        after = codec.loads(e["after"]) if e.get("after") else _MISSING
        if before is _MISSING:
            click.echo("    created")
        elif isinstance(after, dict) and after.get("deleted"):
            click.echo("    deleted")
        elif e["kind"] != "environment":
            for path, old, new in diff(before, after):
                click.echo(f"    {path}: {_show(old)} -> {_show(new)}")
