"""relay/admin/openapi.json describes exactly the admin app's routes, and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import schemathesis
from starlette.routing import Route

from relay.admin.app import create_admin_app, document
from relay.config import Settings
from relay.wire import codec


def documented() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in codec.loads(document())["paths"].items() for method in item
            if method != "parameters"}  # fmt: skip


def served() -> set[tuple[str, str]]:
    out = set()
    for route in create_admin_app(Settings()).routes:
        assert isinstance(route, Route)
        out.update((route.path, method) for method in route.methods or () if method != "HEAD")
    return out


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    assert served() - documented() == set(), "routes missing from relay/admin/openapi.json"
    assert documented() - served() == set(), "relay/admin/openapi.json names routes the admin app does not serve"


def test_the_document_is_valid_and_every_api_route_needs_a_token() -> None:
    doc = codec.loads(document())
    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()
    operations = [(path, op) for path, item in doc["paths"].items() for m, op in item.items() if m != "parameters"]
    assert len({op["operationId"] for _, op in operations}) == len(operations), "operationIds must be unique"
    for path, op in operations:
        if path.startswith("/api/v1/"):
            assert "security" not in op and {"401", "403", "429"} <= set(op["responses"]), path
        else:
            assert op["security"] == [], path
