"""What every admin route reaches through `request.app.state.admin`, and the first step of each: who is asking,
and may they do this (relay.access.tokens.require) — before anything is read for them or written."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from relay.access.sealing import Sealer
from relay.access.tokens import Action, Role, TokenRecord, require
from relay.admin.auth import TokenAuth
from relay.config import Settings
from relay.errors import Forbidden, UnsupportedMediaType, ValidationError
from relay.server.body import read_body
from relay.store.storage import Storage
from relay.store.tokens import TokenStore
from relay.store.writes import WritePath
from relay.wire import codec

# Admin bodies (imports) may be far larger than SDK ones: up to this many bytes.
BODY_LIMIT = 64 * 1_048_576


@dataclass
class AdminState:
    settings: Settings
    storage: Storage
    tokens: TokenStore
    auth: TokenAuth
    sealer: Sealer | None = None
    clock: Callable[[], float] = time.time

    def writer(self, who: TokenRecord) -> WritePath:
        """The write path acting for `who`: audited with its owner's name and its id, never a claimed name."""
        path = WritePath(
            self.storage,
            actor=who.name,
            sealer=self.sealer,
            audit_fields={"via": "api", "token": who.id},
            max_item_bytes=self.settings.max_item_bytes,
            strict=self.settings.strict_writes,
        )
        return path


def state_of(request: Request) -> AdminState:
    return request.app.state.admin  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def caller(
    request: Request, action: Action, env: str | None = None, flag_key: str | None = None
) -> tuple[AdminState, TokenRecord]:
    """The admin state and the request's live token, which may do `action` (401, 403, 429 otherwise)."""
    state, who = await authenticated(request)
    require(who, action, env, flag_key, now=state.clock())
    return state, who


async def authenticated(request: Request) -> tuple[AdminState, TokenRecord]:
    """The admin state and the request's live token, whatever it may do (401, 429 otherwise)."""
    state = state_of(request)
    return state, await state.auth.authenticate(request.headers.get("authorization"), client_address(request))


def require_role(who: TokenRecord, role: Role, what: str) -> None:
    if who.role < role:
        raise Forbidden(f"{what} needs the {role} role, this token is {who.role}")


def item_check(who: TokenRecord, env: str, now: float) -> Callable[[str, str], None]:
    """`check(kind, key)` for the write path: Forbidden, naming the item, for one outside `who`'s scope."""

    def check(kind: str, key: str) -> None:
        try:
            require(who, Action.WRITE_ITEM, env, key if kind == "flag" else None, now=now)
        except Forbidden as e:
            raise Forbidden(f'{kind} "{key}": {e}') from None

    return check


async def json_body(request: Request, *, optional: bool = False, media_types: tuple[str, ...] = ()) -> Any:
    """The request's JSON (415 unless its Content-Type is JSON or one of `media_types`; with `optional`, an
    empty body is {})."""
    body = await read_body(request, BODY_LIMIT)
    if optional and not body.strip():
        return {}
    media = media_type(request)
    if media != "application/json" and media not in media_types:
        raise UnsupportedMediaType(f"expected Content-Type: {', '.join(('application/json', *media_types))}")
    return codec.loads(body)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def comment_of(request: Request, body: Any) -> str:
    """A write's comment: `"comment"` in the body (removed from it), else the X-Relay-Comment header."""
    comment = body.pop("comment", None) if isinstance(body, dict) else None
    if comment is None:
        return request.headers.get("x-relay-comment", "")
    if not isinstance(comment, str):
        raise ValidationError("comment", "expected a string")
    return comment


def strict_of(request: Request) -> bool | None:
    """`?strict=true|false`: refuse what would be a warning, or not; absent: the node's strict_writes."""
    return query_flag(request, "strict") if "strict" in request.query_params else None


def query_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ValidationError(name, f'expected true or false, got "{value}"')
    return value in ("true", "1")
