"""The /api/v1 routes, one module per resource; `routes` is all of them, in matching order."""

from __future__ import annotations

from starlette.routing import Route

from relay.admin.routes import audit, environments, items, tokens, transfer

routes: list[Route] = [
    *environments.routes,
    *items.routes_for("flag"),
    *items.routes_for("segment"),
    *transfer.routes,
    *audit.routes,
    *tokens.routes,
]
