"""`/api/v1/environments[/{env}]`: list, get, create (its keys answered once; existing ones may be given), delete."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.environments import Environment
from relay.access.tokens import Action
from relay.admin.responses import json_response
from relay.admin.state import authenticated, caller, comment_of, json_body, query_flag
from relay.errors import ValidationError
from relay.store.plan import confirmed


def view(env: Environment) -> dict[str, Any]:
    """An environment as the API shows it: never a secret key, nor a hash of one (the client-side ID is public)."""
    now = int(time.time() * 1000)
    return {
        "key": env.key,
        "name": env.name,
        "created": env.created_ms,
        "clientSideId": env.client_side_id,
        "sdkKeys": len(env.live("sdk", now)),
        "mobileKeys": len(env.live("mobile", now)),
        "secureMode": env.secure_mode,
    }


async def list_environments(request: Request) -> Response:
    """Those the token covers (every environment for a token without an environment list)."""
    state, who = await authenticated(request)
    envs = await state.writer(who).list_environments()
    return json_response({"items": [view(e) for e in envs if who.covers_env(e.key)]})


async def get_environment(request: Request) -> Response:
    env = request.path_params["env"]
    state, who = await caller(request, Action.READ, env)
    return json_response(view(await state.writer(who).environment(env)))


async def create_environment(request: Request) -> Response:
    """An admin token for every environment only: a new environment is outside any environment list."""
    env = request.path_params["env"]
    state, who = await caller(request, Action.MANAGE_ENV)
    body = await json_body(request, optional=True)
    if not isinstance(body, dict):
        raise ValidationError("environment", "expected a JSON object")
    name, secure = body.get("name"), body.get("secureMode", False)
    if name is not None and not isinstance(name, str):
        raise ValidationError("name", "expected a string")
    if not isinstance(secure, bool):
        raise ValidationError("secureMode", "expected true or false")
    # Existing keys brought along (checked, and refused if another environment has them, by the write path).
    given = {field: body.get(field) for field in ("sdkKey", "mobileKey", "clientSideId")}
    created, secrets = await state.writer(who).create_environment(
        env,
        name,
        secure_mode=secure,
        sdk_key=given["sdkKey"],
        mobile_key=given["mobileKey"],
        client_side_id=given["clientSideId"],
    )
    keys = {"sdkKey": secrets["sdk_key"], "mobileKey": secrets["mobile_key"]}
    return json_response({**view(created), **keys}, 201)


async def delete_environment(request: Request) -> Response:
    """Needs `?confirm=<env>` (the API's confirmation, as `relay env delete` asks on a terminal);
    `?dry_run=true` says what would go. Nodes end the environment's streams and drop it."""
    env = request.path_params["env"]
    state, who = await caller(request, Action.MANAGE_ENV, env)
    if request.query_params.get("confirm") != env:
        raise ValidationError("confirm", f"deleting an environment needs ?confirm={env}")
    dry_run = query_flag(request, "dry_run")  # as every write reads it: `?dry_run=1` must not delete
    plan = await state.writer(who).delete_environment(
        env, confirm=confirmed, dry_run=dry_run, comment=comment_of(request, {})
    )
    return json_response({"key": env, "deleted": not dry_run, "dryRun": dry_run, **plan.to_dict()})


routes = [
    Route("/api/v1/environments", list_environments, methods=["GET"]),
    Route("/api/v1/environments/{env}", get_environment, methods=["GET"]),
    Route("/api/v1/environments/{env}", create_environment, methods=["POST"]),
    Route("/api/v1/environments/{env}", delete_environment, methods=["DELETE"]),
]
