"""`relay tokens create|list|revoke|rotate`: personal access tokens for the admin API.

On Redis directly this is the break-glass path — `tokens create --role admin` works with no token at all,
audited as "direct-redis:<OS user>" — and through the API (RELAY_API_URL, RELAY_TOKEN) the token in use
may never mint more than itself.
"""

from __future__ import annotations

import time
from typing import Any

import click

from relay.access.tokens import DIRECT_REDIS
from relay.cli.api import ApiClient
from relay.cli.common import echo_json, json_option, os_user, run
from relay.store.storage import Storage
from relay.store.tokens import TokenStore, created_view, view


def _break_glass() -> str:
    return f"{DIRECT_REDIS}{os_user()}"


@click.group("tokens")
def tokens_group() -> None:
    """Personal access tokens for the admin API (shown once; stored only as a SHA-256)."""


def _show_created(created: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        echo_json(created)
        return
    scope = ", ".join(created["envs"]) or "all environments"
    globs = f"; flags {', '.join(created['flags'])}" if created["flags"] else ""
    click.echo(f"{verb} token {created['id']} for {created['name']} ({created['role']}, {scope}{globs}; "
               f"expires {created['expires']}).")  # fmt: skip
    click.echo("Store it now: it is not shown again.", err=True)
    click.echo(created["token"])


@tokens_group.command("create")
@click.option("--name", required=True, help="Whose token it is (the audit log's actor for its writes).")
@click.option("--role", required=True, type=click.Choice(["reader", "writer", "admin"]), help="What it may do.")
@click.option("--env", "envs", multiple=True, metavar="ENV", help="Only this environment (repeat; none: all).")
@click.option("--flags", "flags", multiple=True, metavar="GLOB", help="A writer writes only flags matching (repeat).")
@click.option("--expires", help="90m, 12h, 30d, 2w, 1y (at most 365 days; default 30d, or the issuing token's expiry).")
@json_option
def create(
    name: str, role: str, envs: tuple[str, ...], flags: tuple[str, ...], expires: str | None, as_json: bool
) -> None:
    """Create a token and print it, once."""

    async def go(target: Storage | ApiClient) -> dict[str, Any]:
        if isinstance(target, ApiClient):
            body = {"name": name, "role": role, "envs": list(envs), "flags": list(flags)}
            body.update({"expires": expires} if expires else {})
            return await target.acall("POST", "/api/v1/tokens", body)  # type: ignore[no-any-return]
        token, record = await TokenStore(target).issue(name, role, envs, flags, expires, by=_break_glass())
        return created_view(token, record)

    _show_created(run(go), as_json, "Created")  # type: ignore[arg-type]


@tokens_group.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Every token (through the API, as the token in use may see them); never a token itself."""

    async def go(target: Storage | ApiClient) -> list[dict[str, Any]]:
        if isinstance(target, ApiClient):
            return (await target.acall("GET", "/api/v1/tokens"))["items"]  # type: ignore[no-any-return]
        now = time.time()
        return [view(r, now) for r in await TokenStore(target).list()]

    rows = run(go)  # type: ignore[arg-type]
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'ID':<17} {'NAME':<20} {'ROLE':<7} {'STATE':<8} {'EXPIRES':<21} {'LAST USED':<21} SCOPE")
    for r in rows:
        scope = ", ".join(r["envs"]) or "all environments"
        scope += f"; flags {', '.join(r['flags'])}" if r["flags"] else ""
        click.echo(f"{r['id']:<17} {r['name']:<20} {r['role']:<7} {r['state']:<8} {r['expires']:<21} "
                   f"{r['lastUsed'] or '-':<21} {scope}")  # fmt: skip


@tokens_group.command("revoke")
@click.argument("token_id", metavar="ID")
@json_option
def revoke(token_id: str, as_json: bool) -> None:
    """Revoke a token: every node refuses it within a second."""

    async def go(target: Storage | ApiClient) -> dict[str, Any]:
        if isinstance(target, ApiClient):
            return await target.acall("DELETE", f"/api/v1/tokens/{token_id}")  # type: ignore[no-any-return]
        return view(await TokenStore(target).revoke(token_id, by=_break_glass()), time.time())

    shown = run(go)  # type: ignore[arg-type]
    echo_json(shown) if as_json else click.echo(f"revoked {shown['id']} ({shown['name']})")


@tokens_group.command("rotate")
@click.argument("token_id", metavar="ID")
@click.option("--expires", help="A new expiry (90m … 1y); default: the current one.")
@json_option
def rotate(token_id: str, expires: str | None, as_json: bool) -> None:
    """A new secret for the same token id and scope, printed once; the old secret stops working at once."""

    async def go(target: Storage | ApiClient) -> dict[str, Any]:
        if isinstance(target, ApiClient):
            body = {"expires": expires} if expires else {}
            return await target.acall("POST", f"/api/v1/tokens/{token_id}/rotate", body)  # type: ignore[no-any-return]
        token, record = await TokenStore(target).rotate(token_id, by=_break_glass(), expires=expires)
        return created_view(token, record)

    _show_created(run(go), as_json, "Rotated")  # type: ignore[arg-type]
