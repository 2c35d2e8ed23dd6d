"""How the CLI shows what a write did or would do, and how it asks before a write deletes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from relay.cli.common import echo_json
from relay.evaluation import DataWarning
from relay.store.checks import MAX_REPORTED
from relay.store.plan import MISSING, Confirm, ItemChange, WriteResult, diff
from relay.wire import codec

dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show what would change and what would be deleted, and write nothing."
)
env_dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would be done, and do nothing.")
yes_option = click.option(
    "--yes", is_flag=True, help="Go ahead without asking before deleting (needed when stdin is not a terminal)."
)
strict_option = click.option(
    "--strict/--no-strict",
    default=None,
    help="Refuse, writing nothing, what would otherwise be written with a warning: what LaunchDarkly's SDKs "
    "evaluate but only ever to MALFORMED_FLAG or to no match (docs/compatibility.md). Default: the "
    "strict_writes setting (RELAY_STRICT_WRITES), off unless set.",
)

_WOULD = {"created": "would create", "updated": "would update", "deleted": "would delete", "unchanged": "unchanged"}


def show_value(value: Any) -> str:
    return repr(value) if value is MISSING else codec.dumps(value).decode()


def _version(item: dict[str, Any] | None) -> Any:
    return item.get("version") if item else None


def echo_change(change: ItemChange, *, done: bool = False) -> None:
    """One item: what happens to it and, for an update, each field that changes."""
    verb = change.action if done else _WOULD[change.action]
    before, after = _version(change.before), _version(change.after)
    if change.action == "updated":
        versions = f"version {before} -> {after}"
    elif change.action == "deleted":
        versions = f"version {before}"
    else:
        versions = f"version {after}"
    click.echo(f"{verb} {change.kind} {change.key} ({versions})")
    if change.action == "updated":
        for path, old, new in diff(change.before, change.after):
            click.echo(f"    {path}: {show_value(old)} -> {show_value(new)}")


def counts(result: WriteResult) -> str:
    return ", ".join(f"{result.count(a)} {a}" for a in ("created", "updated", "deleted", "unchanged"))


def echo_warnings(warnings: list[DataWarning]) -> None:
    """On stderr, after the result: what was written but deserves a look (the first 100)."""
    for warning in warnings[:MAX_REPORTED]:
        click.echo(f"warning: {warning}", err=True)
    if len(warnings) > MAX_REPORTED:
        click.echo(f"… and {len(warnings) - MAX_REPORTED} more warnings (--json lists them all)", err=True)


def echo_item_result(result: WriteResult, verb: str, as_json: bool) -> None:
    """A write of one item: set, toggle, delete."""
    if as_json:
        echo_json(result.to_dict())
        return
    _echo_item_result(result, verb)
    echo_warnings(result.warnings)


def _echo_item_result(result: WriteResult, verb: str) -> None:
    if result.dry_run:
        click.echo("dry run: nothing written")
        for change in result.changes:
            echo_change(change)
    elif not result.data_versions:
        for change in result.changes:
            click.echo(f"unchanged: {change.kind} {change.key} is already so (version {_version(change.after)})")
        click.echo("nothing written")
    else:
        echo_notes(result)
        for item in result.items:
            click.echo(f"{verb} {item['key']} (version {item['version']}, data version {result.data_versions[-1]})")


def echo_notes(result: WriteResult) -> None:
    """What the write had to do besides writing (freeing stored events on a full Redis)."""
    for note in result.notes:
        click.echo(f"note: {note}")


def echo_import_result(result: WriteResult, env: str, as_json: bool) -> None:
    written = [c for c in result.changes if c.action != "unchanged"]
    if as_json:
        body = result.to_dict()
        del body["items"]  # the changes carry each item's after
        echo_json({"written": 0 if result.dry_run else len(written), **body})
        return
    flags = sum(1 for c in written if c.kind == "flag")
    if result.dry_run:
        click.echo("dry run: nothing written")
        for change in written:
            echo_change(change)
        click.echo(f"would import {len(written)} items ({flags} flags) into {env}: {counts(result)}")
    else:
        echo_notes(result)
        click.echo(f"imported {len(written)} items ({flags} flags) into {env}: {counts(result)}")
    echo_warnings(result.warnings)


def interactive() -> bool:
    """Whether relay can ask (stdin is a terminal, not a pipe or a file)."""
    return sys.stdin.isatty()


def confirmer(yes: bool, question: Callable[[Any], str], show: Callable[[Any], None] | None = None) -> Confirm:
    """Yes with --yes; else the question on a terminal (after `show(plan)`); else no, saying why."""

    def confirm(plan: Any) -> bool:
        if yes:
            return True
        if not interactive():
            click.echo("stdin is not a terminal, so relay cannot ask: pass --yes to go ahead", err=True)
            return False
        if show is not None:
            show(plan)
        return click.confirm(question(plan), default=False)

    return confirm


def show_deletions(result: WriteResult) -> None:
    for change in result.deletions:
        echo_change(change)
