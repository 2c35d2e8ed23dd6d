"""`relay env`: create, list, delete environments and rotate their keys; secure mode; accept."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from relay.access.sealing import Sealer, sealer_for
from relay.cli.common import (
    actor_option,
    comment_option,
    echo_json,
    fail,
    json_option,
    parse_duration,
    run,
    settings,
    write_path,
)
from relay.cli.ldrelay import import_ld_relay_config
from relay.cli.show import confirmer, env_dry_run_option, yes_option
from relay.errors import ValidationError
from relay.store.plan import EnvironmentPlan
from relay.store.storage import Storage


def _sealer() -> Sealer | None:
    """With `secret_key` set, SDK keys are also stored sealed, so secure mode can be turned on."""
    try:
        return sealer_for(settings().secret_key)
    except ValidationError as e:
        fail(e)
    return None


@click.group("env")
def env_group() -> None:
    """Environments and their keys (SDK key, client-side ID, mobile key)."""


@env_group.command("create")
@click.argument("key")
@click.option("--name", help="A display name (default: the key).")
@click.option("--secure-mode", is_flag=True, help="Browsers must send the context's hash (needs RELAY_SECRET_KEY).")
@click.option(
    "--sdk-key-stdin", is_flag=True, help="Use an existing SDK key (sdk-…), read as a line from standard input."
)
@click.option(
    "--mobile-key-stdin",
    is_flag=True,
    help="Use an existing mobile key (mob-…), read as a line from standard input (after the SDK key's line).",
)
@click.option("--client-side-id", metavar="ID", help="Use an existing client-side ID (public, so an option).")
@actor_option
@json_option
def create(
    key: str,
    name: str | None,
    secure_mode: bool,
    sdk_key_stdin: bool,
    mobile_key_stdin: bool,
    client_side_id: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Create an environment and print its keys, once: relay stores only their hashes (and, with a
    secret key configured, the SDK key sealed for secure mode).

    To keep LaunchDarkly keys applications already have, give them: secrets on standard input (one
    line each, the SDK key's first), never in arguments, where shell history and `ps` would show them."""
    # Read before anything else, so a refusal below never leaves a key waiting in a pipe.
    sdk_key = sys.stdin.readline().rstrip("\r\n") if sdk_key_stdin else None
    mobile_key = sys.stdin.readline().rstrip("\r\n") if mobile_key_stdin else None
    sealer = _sealer()

    async def go(storage: Storage) -> dict[str, str]:
        writer = write_path(storage, actor, sealer=sealer)
        _, secrets = await writer.create_environment(
            key, name, secure_mode=secure_mode, sdk_key=sdk_key, mobile_key=mobile_key, client_side_id=client_side_id
        )
        return secrets

    secrets = run(go)
    if as_json:
        echo_json(secrets)
        return
    click.echo(f"Created environment {key}. Store these now; the SDK and mobile keys are not shown again.")
    click.echo(f"  SDK key (server-side SDKs):   {secrets['sdk_key']}")
    click.echo(f"  client-side ID (browsers):    {secrets['client_side_id']}")
    click.echo(f"  mobile key (mobile apps):     {secrets['mobile_key']}")


@env_group.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List environments (keys are never shown; only the public client-side ID)."""

    async def go(storage: Storage) -> list[dict[str, object]]:
        envs = await write_path(storage, "").list_environments()
        return [
            {
                "key": e.key,
                "name": e.name,
                "client_side_id": e.client_side_id,
                "sdk_keys": len(e.sdk_keys),
                "mobile_keys": len(e.mobile_keys),
                "secure_mode": e.secure_mode,
            }
            for e in envs
        ]

    rows = run(go)
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'KEY':<20} {'NAME':<24} {'CLIENT-SIDE ID':<26} SDK KEYS  MOBILE KEYS  SECURE MODE")
    for r in rows:
        click.echo(
            f"{r['key']!s:<20} {r['name']!s:<24} {r['client_side_id']!s:<26} {r['sdk_keys']!s:<9} "
            f"{r['mobile_keys']!s:<12} {'on' if r['secure_mode'] else 'off'}"
        )


@env_group.command("rotate-key")
@click.argument("key")
@click.option("--sdk", "kind", flag_value="sdk", help="Rotate the server-side SDK key.")
@click.option("--mobile", "kind", flag_value="mobile", help="Rotate the mobile key.")
@click.option(
    "--grace", default="1h", show_default=True, help="How long the old key keeps working (e.g. 0s, 15m, 1h, 7d)."
)
@env_dry_run_option
@actor_option
@comment_option
@json_option
def rotate_key(key: str, kind: str | None, grace: str, dry_run: bool, actor: str, comment: str, as_json: bool) -> None:
    """Issue a new SDK or mobile key; the old one keeps working for the grace period."""
    if kind is None:
        raise click.UsageError("say which key: --sdk or --mobile")
    grace_seconds = parse_duration(grace)
    if dry_run:
        ends = run(lambda storage: write_path(storage, actor).rotation_plan(key, kind, grace_seconds))
        if as_json:
            echo_json({"key": key, "dry_run": True, "kind": kind, "current_keys_expire": ends[1:]})
            return
        click.echo(f"dry run: nothing written. A new {kind} key for {key}; its {len(ends) - 1} current key(s):")
        for end in ends[1:]:
            click.echo(f"    would stop working at {_when(end)}")
        return
    sealer = _sealer()
    new_key = run(
        lambda storage: write_path(storage, actor, sealer=sealer).rotate_key(key, kind, grace_seconds, comment)
    )
    if as_json:
        echo_json({"key": key, f"{kind}_key": new_key, "old_key_valid_for_seconds": grace_seconds})
    else:
        click.echo(f"New {kind} key for {key} (shown once): {new_key}\nThe old key works for {grace} more.")


@env_group.command("secure-mode")
@click.argument("key")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option(
    "--sdk-key-stdin",
    is_flag=True,
    help="Read the current SDK key from standard input and seal it (for keys made without a secret key).",
)
@actor_option
@comment_option
def secure_mode(key: str, state: str, sdk_key_stdin: bool, actor: str, comment: str) -> None:
    """Turn secure mode on or off: browsers must then send `h`, the HMAC-SHA256 of the context's key
    with the SDK key (LaunchDarkly's `secure_mode_hash`). Needs RELAY_SECRET_KEY here and on every node."""
    sdk_key = sys.stdin.readline().strip() if sdk_key_stdin else None
    sealer = _sealer()
    run(
        lambda storage: write_path(storage, actor, sealer=sealer).set_secure_mode(
            key, state == "on", sdk_key=sdk_key or None, comment=comment
        )
    )
    click.echo(f"Secure mode is {state} for {key}.")


@env_group.command("accept")
@click.argument("key")
@click.option(
    "--force",
    is_flag=True,
    help="Also when Redis shows no sign of lost data for KEY (Redis restored from an older RDB/AOF backup "
    "looks whole: check that a node's /readyz lists KEY as diverged).",
)
@env_dry_run_option
@actor_option
@comment_option
def accept(key: str, force: bool, dry_run: bool, actor: str, comment: str) -> None:
    """Make every node serve Redis's data for KEY as it is now.

    After Redis lost data (restarted empty, or restored from an older backup) nodes keep serving
    their newer rulesets and raise an alarm (/readyz "diverged", relay_redis_diverged). Restore or
    re-import the data, then run this: nodes take it, and their SDKs reconnect to a fresh copy.
    Refused, unless --force, when Redis shows no sign of having lost KEY's data: on a healthy
    environment it would only make every SDK reconnect.
    """
    plan = run(
        lambda storage: write_path(storage, actor).accept_redis_data(key, force=force, dry_run=dry_run, comment=comment)
    )
    why = f" ({plan.lost_data})" if plan.lost_data else " (forced)"
    if dry_run:
        click.echo(
            f"dry run: nothing done. {key}: nodes would take Redis's data as it is{why}: {plan.flags} flags, "
            f"{plan.segments} segments, data version {plan.data_version}; their streams would reconnect"
        )
    else:
        click.echo(f"{key}: nodes now take Redis's data (data version {plan.data_version}); their streams reconnect")


@env_group.command("delete")
@click.argument("key")
@yes_option
@click.option("--dry-run", is_flag=True, help="Show what would be deleted, and delete nothing.")
@actor_option
@comment_option
@json_option
def delete(key: str, yes: bool, dry_run: bool, actor: str, comment: str, as_json: bool) -> None:
    """Delete an environment: its record (so its SDK, mobile and client-side keys), flags, segments
    and events are removed, and the deletion is announced to every node, which drops it and ends
    its streams. Asks first on a terminal; else needs --yes. Its audit log stays readable
    (relay audit --env KEY) and records the deletion."""

    def question(plan: EnvironmentPlan) -> str:
        return (
            f'Delete environment "{key}" with {plan.flags} flags and {plan.segments} segments? '
            "Its SDK, mobile and client-side keys stop working"
        )

    plan = run(
        lambda storage: write_path(storage, actor).delete_environment(
            key, confirm=confirmer(yes, question), dry_run=dry_run, comment=comment
        )
    )
    if as_json:
        echo_json(plan.to_dict())
    elif dry_run:
        click.echo(
            f"dry run: nothing deleted. Would delete environment {key} with {plan.flags} flags and "
            f"{plan.segments} segments (data version {plan.data_version}), removing: {', '.join(plan.keys)}"
        )
    else:
        click.echo(f"deleted environment {key} with {plan.flags} flags and {plan.segments} segments")


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


env_group.add_command(import_ld_relay_config)
