"""`relay env import-ld-relay-config`: a LaunchDarkly Relay Proxy deployment's environments, keys kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from relay.access.ldrelay import IMPORTED, NOT_USED, LdEnvironment, boolean, parse, relay_key
from relay.access.ownkeys import check_given_key
from relay.access.sealing import sealer_for
from relay.cli.api import ApiClient
from relay.cli.common import actor_option, echo_json, fail, json_option, run, settings, write_path
from relay.errors import ValidationError
from relay.store.storage import Storage


@dataclass(frozen=True, slots=True)
class Planned:
    """One relay environment to create from one `[Environment "NAME"]` block."""

    ld_name: str
    key: str
    sdk_key: str
    mobile_key: str | None
    client_side_id: str | None
    secure_mode: bool

    def summary(self) -> str:
        keys = [
            "SDK key",
            *(["mobile key"] if self.mobile_key else []),
            *(["client-side ID"] if self.client_side_id else []),
        ]
        return (
            f'[Environment "{self.ld_name}"] -> {self.key}: {", ".join(keys)}; '
            f"secure mode {'on' if self.secure_mode else 'off'}"
        )


def plan(envs: list[LdEnvironment]) -> tuple[list[Planned], list[str]]:
    """What to create, and the warnings (fields relay does not use, unknown fields). Every block is
    checked before anything is created: a bad key in the last block refuses the whole file."""
    planned: list[Planned] = []
    warnings: list[str] = []
    for env in envs:
        where = f'[Environment "{env.name}"] (line {env.line})'
        sdk_key = env.one("sdkKey")
        if sdk_key is None:
            raise ValidationError("sdkKey", f"{where}: no sdkKey (ld-relay requires one)")
        try:
            check_given_key("sdkKey", sdk_key)
            mobile_key = env.one("mobileKey")
            client_side_id = env.one("envId")
            if mobile_key is not None:
                check_given_key("mobileKey", mobile_key)
            if client_side_id is not None:
                check_given_key("clientSideId", client_side_id)
        except ValidationError as e:
            raise ValidationError(e.path, f"{where}: {e.reason}") from None
        for name, values in env.fields.items():
            if name in NOT_USED:
                warnings.append(f"{where}: {name} = {', '.join(values)} not imported: {NOT_USED[name]}")
            elif name not in IMPORTED:
                warnings.append(f"{where}: unknown field {name!r} ignored")
        item = Planned(
            env.name, relay_key(env.name), sdk_key, mobile_key, client_side_id, boolean(env.one("secureMode"), where)
        )
        clash = next((p for p in planned if p.key == item.key), None)
        if clash is not None:
            raise ValidationError(
                "env", f'{where}: "{env.name}" and "{clash.ld_name}" both make the relay key "{item.key}"; rename one'
            )
        for field, value in (("sdkKey", sdk_key), ("mobileKey", mobile_key), ("envId", client_side_id)):
            twin = next(
                (p for p in planned if value is not None and value in (p.sdk_key, p.mobile_key, p.client_side_id)), None
            )
            if twin is not None:
                raise ValidationError(field, f'{where}: the same key as [Environment "{twin.ld_name}"]')
        planned.append(item)
    return planned, warnings


@click.command("import-ld-relay-config")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List what would be created, and create nothing.")
@click.option("--skip-existing", is_flag=True, help="Skip environments relay already has (else: refused).")
@actor_option
@json_option
def import_ld_relay_config(config_file: Path, dry_run: bool, skip_existing: bool, actor: str, as_json: bool) -> None:
    """Create one environment per `[Environment "NAME"]` block of LaunchDarkly Relay Proxy's
    configuration file, with its sdkKey, mobileKey and envId (the client-side ID) and secureMode,
    so applications keep their keys. The key is NAME lowercased, other characters than letters,
    digits, ".", "_" and "-" made "-" ("Spree Project Production" -> spree-project-production).
    Fields relay has no use for (allowedOrigin, prefix, ttl, …) and unknown ones are warned about."""
    try:
        envs, _ = parse(config_file.read_text(encoding="utf-8"))
        planned, warnings = plan(envs)
        sealer = sealer_for(settings().secret_key)
    except (ValidationError, UnicodeDecodeError) as e:
        fail(e if isinstance(e, ValidationError) else f"{config_file}: not UTF-8 text ({e})", 2)
        return
    if not planned:
        fail(ValidationError("config", f'{config_file}: no [Environment "NAME"] block'))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)

    async def go(target: Storage | ApiClient) -> tuple[list[str], list[str]]:
        writer = write_path(target, actor, sealer=sealer)
        existing = {e.key for e in await writer.list_environments()}
        taken = [p.key for p in planned if p.key in existing]
        if taken and not skip_existing:
            raise ValidationError(
                "env", f"relay already has {', '.join(taken)}; nothing created (--skip-existing skips them)"
            )
        secure = [p.key for p in planned if p.secure_mode and p.key not in existing]
        if secure and sealer is None and not isinstance(target, ApiClient):
            raise ValidationError(
                "secret_key",
                f"{', '.join(secure)} use secure mode, which needs the secret key that seals SDK keys: set "
                "RELAY_SECRET_KEY (here and on every node); nothing created",
            )
        if not isinstance(target, ApiClient):  # the API shows no key hashes; there each create checks its own
            for p in planned:
                if p.key not in existing:
                    await writer.refuse_taken_keys(p.sdk_key, p.mobile_key, p.client_side_id)
        created: list[str] = []
        for p in planned:
            if p.key in existing or dry_run:
                continue
            await writer.create_environment(
                p.key,
                p.ld_name,
                secure_mode=p.secure_mode,
                sdk_key=p.sdk_key,
                mobile_key=p.mobile_key,
                client_side_id=p.client_side_id,
            )
            created.append(p.key)
        return created, taken

    created, skipped = run(go)
    if as_json:
        echo_json({"dry_run": dry_run, "created": created, "skipped": skipped, "warnings": warnings})
        return
    for p in planned:
        if p.key in skipped:
            click.echo(f"skipped {p.key}: relay already has it ({p.summary()})")
        else:
            click.echo(f"{'would create' if dry_run else 'created'} {p.summary()}")
    if dry_run:
        click.echo("dry run: nothing created")
