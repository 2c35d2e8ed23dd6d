"""`relay flags …` and `relay segments …`: reading and changing items, every change audited."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from relay.cli.common import actor_option, comment_option, echo_json, env_option, fail, json_option, run, write_path
from relay.errors import ValidationError
from relay.store.storage import Storage
from relay.store.writes import Admin, WriteResult
from relay.wire import codec


def _read_json(source: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as e:
        fail(ValidationError(source, e.strerror or str(e)))
    try:
        return codec.loads(raw, what="stdin" if source == "-" else source)
    except ValidationError as e:
        fail(e)


def _writer(storage: Storage, actor: str) -> Admin:
    return write_path(storage, actor)  # on Redis directly, or through the admin API (relay.cli.api)


def _report(result: WriteResult, verb: str, as_json: bool) -> None:
    if as_json:
        echo_json({"items": result.items, "data_versions": result.data_versions})
    elif not result.data_versions:
        click.echo("unchanged: nothing written")
    else:
        for item in result.items:
            click.echo(f"{verb} {item['key']} (version {item['version']}, data version {result.data_versions[-1]})")


def _summary(item: dict[str, Any], kind: str) -> str:
    head = f"{item['key']:<32} v{item['version']:<6}"
    rules = len(item.get("rules", []))
    if kind == "segment":
        return f"{head} {len(item.get('included', []))} included, {rules} rules"
    state = "ON " if item.get("on") else "off"
    return f"{head} {state}  {rules} rules  {item.get('description', '')}"


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
            for item in items.values():
                click.echo(_summary(item, kind))

    @group.command("get", help=f"Print one {kind} as JSON.")
    @click.argument("key")
    @env_option
    @json_option
    def get(key: str, env: str, as_json: bool) -> None:
        echo_json(run(lambda storage: write_path(storage, "").get_item(env, kind, key)))

    @group.command("set", help=f"Create or replace a {kind} from a JSON file (or - for stdin).")
    @click.argument("source", metavar="FILE")
    @click.option("--key", help="The key, when the JSON has none.")
    @click.option("--expect-version", type=int, help="Fail unless the stored version is this (0: must not exist).")
    @env_option
    @actor_option
    @comment_option
    @json_option
    def set_(
        source: str, key: str | None, expect_version: int | None, env: str, actor: str, comment: str, as_json: bool
    ) -> None:
        data = _read_json(source)

        async def go(storage: Storage) -> WriteResult:
            return await _writer(storage, actor).put_item(
                env, kind, data, key=key, expected_version=expect_version, comment=comment
            )

        _report(run(go), "wrote", as_json)

    @group.command("delete", help=f"Delete a {kind} (a versioned tombstone stays behind).")
    @click.argument("key")
    @click.option("--expect-version", type=int, help="Fail unless the stored version is this.")
    @env_option
    @actor_option
    @comment_option
    @json_option
    def delete(key: str, expect_version: int | None, env: str, actor: str, comment: str, as_json: bool) -> None:
        result = run(
            lambda storage: _writer(storage, actor).delete_item(
                env, kind, key, expected_version=expect_version, comment=comment
            )
        )
        _report(result, "deleted", as_json)

    return group


flags_group = _item_commands("flag")
segments_group = _item_commands("segment")


@flags_group.command("toggle")
@click.argument("key")
@click.option("--on/--off", "on", required=True, help="Targeting on, or off (serve the off variation to everyone).")
@click.option("--expect-version", type=int, help="Fail unless the stored version is this.")
@env_option
@actor_option
@comment_option
@json_option
def toggle(key: str, on: bool, expect_version: int | None, env: str, actor: str, comment: str, as_json: bool) -> None:
    """The kill switch: turn a flag's targeting on or off."""
    result = run(
        lambda storage: _writer(storage, actor).toggle(env, key, on, expected_version=expect_version, comment=comment)
    )
    _report(result, "turned " + ("on" if on else "off"), as_json)


@flags_group.command("import")
@click.argument("source", metavar="FILE")
@click.option("--replace", "replace_all", is_flag=True, help="Also delete flags and segments missing from FILE.")
@env_option
@actor_option
@comment_option
@json_option
def import_(source: str, replace_all: bool, env: str, actor: str, comment: str, as_json: bool) -> None:
    """Import LaunchDarkly's {"flags": {...}, "segments": {...}} format: all or nothing."""
    doc = _read_json(source)
    result = run(
        lambda storage: _writer(storage, actor).import_items(env, doc, replace_all=replace_all, comment=comment)
    )
    if as_json:
        echo_json({"written": len(result.items), "data_versions": result.data_versions})
    else:
        flags = sum(1 for i in result.items if "variations" in i or i.get("deleted"))
        click.echo(f"imported {len(result.items)} items ({flags} flags) into {env}")


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
