"""`GET /api/v1/environments/{env}/audit` (filters, a cursor) and `POST …/audit/{entry}/revert`."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.access.tokens import Action
from relay.admin.responses import json_response
from relay.admin.routes.items import written
from relay.admin.state import caller, comment_of, item_check, json_body
from relay.errors import ValidationError
from relay.store import audit_history, audit_log
from relay.store.audit_log import AuditQuery

MAX_LIMIT = 1000


def _time(name: str, text: str | None) -> int | None:
    """Epoch ms for an RFC 3339 time (`2026-11-26T10:00:00Z`), a date, or epoch ms itself."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(name, f'expected a time such as 2026-11-26T10:00:00Z or epoch ms, got "{text}"') from None
    if dt.tzinfo is None:
        raise ValidationError(name, f'give a time zone (Z or +01:00) with "{text}"')
    return int(dt.timestamp() * 1000)


def query(request: Request) -> AuditQuery:
    params = request.query_params
    flag, segment = params.get("flag"), params.get("segment")
    if flag is not None and segment is not None:
        raise ValidationError("segment", "give flag or segment, not both")
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ValidationError("limit", f'expected 1 to {MAX_LIMIT}, got "{limit_text}"')
    cursor = params.get("cursor") or None
    return AuditQuery(
        kind="flag" if flag is not None else "segment" if segment is not None else None,
        key=flag if flag is not None else segment,
        actor=params.get("actor"),
        since_ms=_time("since", params.get("since")),
        until_ms=_time("until", params.get("until")),
        limit=int(limit_text),
        cursor=audit_log.check_cursor(cursor) if cursor else None,
    )


async def list_audit(request: Request) -> Response:
    """Newest first; `next` is the cursor of the following page, null at the end. `history` says where
    the kept log begins and whether older entries were trimmed for the cap (a last page then ends
    there, not at the environment's creation)."""
    env = request.path_params["env"]
    state, who = await caller(request, Action.READ, env)
    q = query(request)
    writer = state.writer(who)
    entries, cursor = await audit_log.read_page(writer, env, q)
    history = await audit_history.trim(writer.storage, env)
    body = {"entries": [audit_log.view(e) for e in entries], "next": cursor, "history": history.to_dict()}
    return json_response(body)


async def revert(request: Request) -> Response:
    """The entry's "before" written back, if its item is still at the entry's "after" version (409 otherwise)."""
    env, entry_id = request.path_params["env"], request.path_params["entry"]
    state, who = await caller(request, Action.READ, env)
    body = await json_body(request, optional=True)
    comment = comment_of(request, body)
    check = item_check(who, env, state.clock())
    return written(await audit_log.revert(state.writer(who), env, entry_id, comment=comment, check=check))


routes = [
    Route("/api/v1/environments/{env}/audit", list_audit, methods=["GET"]),
    Route("/api/v1/environments/{env}/audit/{entry}/revert", revert, methods=["POST"]),
]
