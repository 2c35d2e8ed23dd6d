"""relay/server/routes/openapi.json describes exactly the routes the app serves, and is a valid OpenAPI 3.2 document."""

from __future__ import annotations

import schemathesis
from starlette.routing import Route

from relay.app import create_app
from relay.config import Settings
from relay.server.routes.openapi import document
from relay.wire import codec

# Starlette path parameters match any segment, so the pixel route serves the documented "/a/{env_id}.gif".
ROUTE_FOR_PATH = {"/a/{env_id}.gif": "/a/{env_id}"}


def documented() -> set[tuple[str, str]]:
    out = set()
    for path, item in codec.loads(document())["paths"].items():
        methods = [m.upper() for m in item if m not in ("additionalOperations", "parameters")]
        methods += list(item.get("additionalOperations", {}))
        out.update((ROUTE_FOR_PATH.get(path, path), method) for method in methods)
    return out


def served() -> set[tuple[str, str]]:
    app = create_app(Settings()).app  # type: ignore[attr-defined]  # inside fastpath.FastPath
    out = set()
    for route in app.routes:
        assert isinstance(route, Route)
        out.update((route.path, method) for method in route.methods or () if method != "HEAD")
    return out


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    assert served() - documented() == set(), "routes missing from openapi.json"
    assert documented() - served() == set(), "openapi.json names routes the app does not serve"


def test_the_document_loads_as_openapi_3_2() -> None:
    doc = codec.loads(document())
    assert doc["openapi"].startswith("3.2")
    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()  # against the OpenAPI 3.2 meta-schema
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert "GET /sdk/evalx/{env_id}/contexts/{context}" in labels and "POST /ofrep/v1/evaluate/flags" in labels
    operation_ids = [
        op["operationId"]
        for item in doc["paths"].values()
        for op in [
            *(v for k, v in item.items() if k != "additionalOperations"),
            *item.get("additionalOperations", {}).values(),
        ]
    ]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
