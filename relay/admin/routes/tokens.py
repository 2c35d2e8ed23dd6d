"""`GET|POST /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`, `POST /api/v1/tokens/{id}/rotate`.

An admin token sees and manages tokens, never issuing one with more power than its own (role, environments,
flag globs, expiry: relay.access.tokens.can_grant); any token may see, rotate and revoke itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.tokens import Action, TokenRecord, allows
from relay.admin.responses import json_response
from relay.admin.state import AdminState, authenticated, json_body
from relay.errors import Forbidden, ValidationError
from relay.store.tokens import created_view, view


def _may_manage(state: AdminState, who: TokenRecord, token_id: str) -> None:
    """Before any lookup, so that other tokens' ids cannot be probed: only an admin, or the token itself."""
    if token_id != who.id and not allows(who, Action.MANAGE_TOKENS, now=state.clock()):
        raise Forbidden(f"managing other tokens needs the admin role, this token is {who.role}")


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(name, "expected a list of strings")
    return tuple(value)


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(name, "expected a string")
    return value


async def list_tokens(request: Request) -> Response:
    """Every token for an admin; only itself for any other token."""
    state, who = await authenticated(request)
    now = state.clock()
    manager = allows(who, Action.MANAGE_TOKENS, now=now)
    records = await state.tokens.list() if manager else [who]
    # This request is the asking token's last use (whose write, in the background, may not be in yet).
    records = [replace(r, last_used=now) if r.id == who.id else r for r in records]
    return json_response({"items": [view(r, now) for r in records]})


async def create_token(request: Request) -> Response:
    """`{"name", "role", "envs"?, "flags"?, "expires"?: "30d"}`; answers the token itself, this once."""
    state, who = await authenticated(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ValidationError("token", "expected a JSON object")
    for name in body:
        if name not in ("name", "role", "envs", "flags", "expires"):
            raise ValidationError(name, "unknown field (a token has name, role, envs, flags and expires)")
    name, role = _optional_string(body, "name"), _optional_string(body, "role")
    if name is None or role is None:
        raise ValidationError("name" if name is None else "role", "is required")
    envs, flags = _strings(body, "envs"), _strings(body, "flags")
    token, record = await state.tokens.issue(name, role, envs, flags, _optional_string(body, "expires"), by=who)
    return json_response(created_view(token, record), 201)


async def revoke_token(request: Request) -> Response:
    state, who = await authenticated(request)
    token_id = request.path_params["id"]
    _may_manage(state, who, token_id)
    revoked = await state.tokens.revoke(token_id, by=who)
    state.auth.on_change(token_id)  # this node at once; the others as the announcement reaches them
    return json_response(view(revoked, state.clock()))


async def rotate_token(request: Request) -> Response:
    """A new secret for the same id and scope (the old one stops working at once); `{"expires"?}`."""
    state, who = await authenticated(request)
    token_id = request.path_params["id"]
    _may_manage(state, who, token_id)
    body = await json_body(request, optional=True)
    if not isinstance(body, dict):
        raise ValidationError("token", "expected a JSON object")
    token, record = await state.tokens.rotate(token_id, by=who, expires=_optional_string(body, "expires"))
    state.auth.on_change(token_id)
    return json_response(created_view(token, record))


routes = [
    Route("/api/v1/tokens", list_tokens, methods=["GET"]),
    Route("/api/v1/tokens", create_token, methods=["POST"]),
    Route("/api/v1/tokens/{id}", revoke_token, methods=["DELETE"]),
    Route("/api/v1/tokens/{id}/rotate", rotate_token, methods=["POST"]),
]
