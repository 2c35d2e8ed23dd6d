"""`relay env`: create, list and rotate the keys of environments."""

from __future__ import annotations

import click

from relay.admin import Admin
from relay.cli.common import actor_option, comment_option, echo_json, json_option, parse_duration, run
from relay.storage import Storage


@click.group("env")
def env_group() -> None:
    """Environments and their keys (SDK key, client-side ID, mobile key)."""


@env_group.command("create")
@click.argument("key")
@click.option("--name", help="A display name (default: the key).")
@actor_option
@json_option
def create(key: str, name: str | None, actor: str, as_json: bool) -> None:
    """Create an environment and print its keys, once: relay stores only their hashes."""

    async def go(storage: Storage) -> dict[str, str]:
        _, secrets = await Admin(storage, actor=actor).create_environment(key, name)
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
        envs = await Admin(storage, actor="").list_environments()
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
    click.echo(f"{'KEY':<20} {'NAME':<24} {'CLIENT-SIDE ID':<26} SDK KEYS  MOBILE KEYS")
    for r in rows:
        click.echo(
            f"{r['key']!s:<20} {r['name']!s:<24} {r['client_side_id']!s:<26} {r['sdk_keys']!s:<9} {r['mobile_keys']}"
        )


@env_group.command("rotate-key")
@click.argument("key")
@click.option("--sdk", "kind", flag_value="sdk", help="Rotate the server-side SDK key.")
@click.option("--mobile", "kind", flag_value="mobile", help="Rotate the mobile key.")
@click.option(
    "--grace", default="1h", show_default=True, help="How long the old key keeps working (e.g. 0s, 15m, 1h, 7d)."
)
@actor_option
@comment_option
@json_option
def rotate_key(key: str, kind: str | None, grace: str, actor: str, comment: str, as_json: bool) -> None:
    """Issue a new SDK or mobile key; the old one keeps working for the grace period."""
    if kind is None:
        raise click.UsageError("say which key: --sdk or --mobile")
    grace_seconds = parse_duration(grace)
    new_key = run(lambda storage: Admin(storage, actor=actor).rotate_key(key, kind, grace_seconds, comment))
    if as_json:
        echo_json({"key": key, f"{kind}_key": new_key, "old_key_valid_for_seconds": grace_seconds})
    else:
        click.echo(f"New {kind} key for {key} (shown once): {new_key}\nThe old key works for {grace} more.")


@env_group.command("accept")
@click.argument("key")
@actor_option
@comment_option
def accept(key: str, actor: str, comment: str) -> None:
    """Make every node serve Redis's data for KEY as it is now.

    After Redis lost data (restarted empty, or restored from an older backup) nodes keep serving
    their newer rulesets and raise an alarm (/readyz "diverged", relay_redis_diverged). Restore or
    re-import the data, then run this: nodes take it, and their SDKs reconnect to a fresh copy.
    """
    version = run(lambda storage: Admin(storage, actor=actor).accept_redis_data(key, comment))
    click.echo(f"{key}: nodes now take Redis's data (data version {version}); their streams reconnect")
