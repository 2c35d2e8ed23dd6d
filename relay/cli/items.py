"""`relay flags …` and `relay segments …`: reading and changing items, every change audited."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from relay.cli.common import actor_option, comment_option, echo_json, env_option, fail, json_option, run, write_path
from relay.cli.show import (
    confirmer,
    dry_run_option,
    echo_import_result,
    echo_item_result,
    show_deletions,
    strict_option,
    yes_option,
)
from relay.errors import ValidationError
from relay.store.plan import WriteResult
from relay.store.storage import Storage
from relay.store.writes import WritePath
from relay.wire import codec

expect_version_option = click.option(
    "--expect-version",
    type=int,
    metavar="N",
    help="Fail, writing nothing, unless the stored version is N (0: must not exist; a deleted item counts as absent).",
)


def _read_json(source: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as e:
        fail(ValidationError(source, e.strerror or str(e)))
    try:
        return codec.loads(raw, what="stdin" if source == "-" else source)
    except ValidationError as e:
        fail(e)


def _writer(storage: Storage, actor: str) -> WritePath:
    return write_path(storage, actor)  # on Redis directly, or through the admin API (relay.cli.api)


_HEADERS = {  # `flags list` and `segments list`: one row per item under these
    "flag": f"{'KEY':<32} {'VERSION':<7} {'ON':<3}  {'RULES':<5}  DESCRIPTION",
    "segment": f"{'KEY':<32} {'VERSION':<7} {'INCLUDED':<8}  RULES",
}


def _summary(item: dict[str, Any], kind: str) -> str:
    head = f"{item['key']:<32} {item['version']:<7}"
    rules = len(item.get("rules", []))
    if kind == "segment":
        return f"{head} {len(item.get('included', [])):<8}  {rules}"
    state = "ON" if item.get("on") else "off"
    return f"{head} {state:<3}  {rules:<5}  {item.get('description', '')}".rstrip()


def _item_commands(kind: str) -> click.Group:
    plural = f"{kind}s"

    @click.group(plural, help=f"Read and change {plural} (every change is audited).")
    def group() -> None:
        pass

    @group.command("list", help=f"List the {plural} of an environment.")
    @env_option
    @json_option
    def list_(env: str, as_json: bool) -> None:
        items = run(lambda storage: write_path(storage, "").list_items(env, kind))
        if as_json:
            echo_json(items)
        else:
            click.echo(_HEADERS[kind])
            for item in items.values():
                click.echo(_summary(item, kind))

    @group.command("get", help=f"Print one {kind} as JSON.")
    @click.argument("key")
    @env_option
    @json_option
    def get(key: str, env: str, as_json: bool) -> None:
        echo_json(run(lambda storage: write_path(storage, "").get_item(env, kind, key)))

    @group.command(
        "set",
        help=f"Create or replace a {kind} from a JSON file (or - for stdin). "
        f"Identical to the stored {kind} (but for its version): nothing is written.",
    )
    @click.argument("source", metavar="FILE")
    @click.option("--key", help="The key, when the JSON has none.")
    @expect_version_option
    @dry_run_option
    @strict_option
    @env_option
    @actor_option
    @comment_option
    @json_option
    def set_(
        source: str, key: str | None, expect_version: int | None, dry_run: bool, strict: bool | None, env: str,
        actor: str, comment: str, as_json: bool,
    ) -> None:  # fmt: skip
        data = _read_json(source)

        async def go(storage: Storage) -> WriteResult:
            return await _writer(storage, actor).put_item(
                env, kind, data, key=key, expected_version=expect_version, comment=comment, dry_run=dry_run,
                strict=strict,
            )  # fmt: skip

        echo_item_result(run(go), "wrote", as_json)

    @group.command("delete", help=f"Delete a {kind} (a versioned tombstone stays behind).")
    @click.argument("key")
    @expect_version_option
    @dry_run_option
    @env_option
    @actor_option
    @comment_option
    @json_option
    def delete(
        key: str, expect_version: int | None, dry_run: bool, env: str, actor: str, comment: str, as_json: bool
    ) -> None:
        result = run(
            lambda storage: _writer(storage, actor).delete_item(
                env, kind, key, expected_version=expect_version, comment=comment, dry_run=dry_run
            )
        )
        echo_item_result(result, "deleted", as_json)

    return group


flags_group = _item_commands("flag")
segments_group = _item_commands("segment")


@flags_group.command("toggle")
@click.argument("key")
@click.option("--on/--off", "on", required=True, help="Targeting on, or off (serve the off variation to everyone).")
@expect_version_option
@dry_run_option
@env_option
@actor_option
@comment_option
@json_option
def toggle(
    key: str, on: bool, expect_version: int | None, dry_run: bool, env: str, actor: str, comment: str, as_json: bool
) -> None:
    """The kill switch: turn a flag's targeting on or off."""
    result = run(
        lambda storage: _writer(storage, actor).toggle(
            env, key, on, expected_version=expect_version, comment=comment, dry_run=dry_run
        )
    )
    echo_item_result(result, "turned " + ("on" if on else "off"), as_json)


@flags_group.command("import")
@click.argument("source", metavar="FILE")
@click.option(
    "--replace",
    "replace_all",
    is_flag=True,
    help="Also delete flags and segments missing from FILE (asks first on a terminal; else needs --yes).",
)
@yes_option
@dry_run_option
@strict_option
@env_option
@actor_option
@comment_option
@json_option
def import_(
    source: str, replace_all: bool, yes: bool, dry_run: bool, strict: bool | None, env: str, actor: str,
    comment: str, as_json: bool,
) -> None:  # fmt: skip
    """Import LaunchDarkly's {"flags": {...}, "segments": {...}} format: all or nothing.

    A top level with any key other than "flags" and "segments", or with neither, is refused.
    Items identical to the stored ones (but for their version) are left as they are. What
    LaunchDarkly's SDKs evaluate but relay warns about is imported, and each warning printed
    after the result (--strict: refused, nothing written).
    """
    doc = _read_json(source)
    confirm = confirmer(yes, lambda plan: f"Delete these {len(plan.deletions)} items from {env}?", show=show_deletions)
    result = run(
        lambda storage: _writer(storage, actor).import_items(
            env, doc, replace_all=replace_all, confirm=confirm, dry_run=dry_run, comment=comment, strict=strict
        )
    )
    echo_import_result(result, env, as_json)


@flags_group.command("export")
@env_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to a file, not stdout.")
def export(env: str, output: str | None) -> None:
    """Export flags and segments in LaunchDarkly's {"flags", "segments"} format."""
    doc = run(lambda storage: write_path(storage, "").export(env))
    data = codec.dumps(doc, pretty=True, sort_keys=True)
    if output:
        Path(output).write_bytes(data + b"\n")
    else:
        click.echo(data.decode())
