"""Every HTTP route fuzzed by schemathesis against a live node (real redis-server, `python -m relay serve`).

The operations come from relay's own OpenAPI document (relay/server/routes/openapi.json, served at
/openapi.json). Each gets a bounded, derandomized run of positive and negative cases, a third of
them with the demo environment's real credentials (and a real context) so fuzzing reaches past
authentication into parsing and evaluation. Checks: no 5xx, and every status code, content type,
response header and response body is one the document declares.

Streams (SSE) never end by themselves: schemathesis reads a stream until `max-stream-events` events
or the request timeout, so each successful stream case costs one `put` event, then disconnects.
`REPORT` routes are OpenAPI 3.2 `additionalOperations`, which schemathesis does not generate; their
bodies are fuzzed in test_properties_http.py.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relay.server.routes.openapi import document
from relay.wire import codec
from tests.integration.helpers import b64
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

Node = tuple[RelayProcess, RedisServer, dict[str, str]]

CONFIG = schemathesis.Config.from_dict({"max-stream-events": 1, "request-timeout": 5})
SCHEMA = schemathesis.openapi.from_dict(codec.loads(document()), config=CONFIG)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONTEXTS = ({"kind": "user", "key": "ann", "userType": "student"}, {"key": "bob"}, {"kind": "org", "key": "acme"})


def _security(case: Any) -> str | None:
    """The scheme an operation is authorized by: "sdk", "mobile", "ofrep", or None (public)."""
    schemes = case.operation.definition.raw.get("security") or []
    names = {name for requirement in schemes for name in requirement}
    if "sdkKey" in names:
        return "sdk"
    if "mobileKey" in names:
        return "mobile"
    return "ofrep" if names else None


def _with_credentials(case: Any, secrets: dict[str, str], pick: int) -> None:
    """Give the case the demo environment's real credentials, and a real context where it takes one."""
    scheme = _security(case)
    case.headers = dict(case.headers or {})
    if scheme in ("sdk", "mobile"):
        case.headers["Authorization"] = secrets["sdk_key" if scheme == "sdk" else "mobile_key"]
    elif scheme == "ofrep":
        case.headers.pop("X-API-Key", None)
        key = ("sdk_key", "mobile_key", "client_side_id")[pick % 3]
        case.headers["Authorization"] = f"Bearer {secrets[key]}"
    params = dict(case.path_parameters or {})
    if "env_id" in params:
        params["env_id"] = secrets["client_side_id"]
    if "context" in params:
        params["context"] = b64(CONTEXTS[pick % len(CONTEXTS)])
    if "key" in params and pick % 2:
        params["key"] = "student-discount"
    case.path_parameters = params


@SCHEMA.parametrize()
@SCHEMA.given(real=st.booleans(), pick=st.integers(0, 5))
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_route_fails_or_breaks_its_contract(case: Any, real: bool, pick: int, demo_node: Node) -> None:
    relay, _, secrets = demo_node
    if real:
        _with_credentials(case, secrets, pick)
    case.call_and_validate(base_url=relay.url, checks=CHECKS)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as r:
        return r.status, r.read()


def test_the_node_survived_and_still_evaluates(demo_node: Node) -> None:
    relay, _, secrets = demo_node
    assert relay.proc is not None and relay.proc.poll() is None, "the node exited"
    assert _get(f"{relay.url}/healthz") == (200, b'{"status":"ok"}')
    status, body = _get(f"{relay.url}/sdk/evalx/{secrets['client_side_id']}/contexts/{b64(CONTEXTS[0])}")
    assert status == 200 and codec.loads(body)["checkout-kill-switch"]["value"] is True
    status, body = _get(f"{relay.url}/sdk/latest-flags/student-discount", {"Authorization": secrets["sdk_key"]})
    assert status == 200 and codec.loads(body)["key"] == "student-discount"
    log = relay.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-4000:]


def test_the_node_serves_the_document_it_is_fuzzed_with(demo_node: Node) -> None:
    relay, _, _ = demo_node
    status, body = _get(f"{relay.url}/openapi.json")
    assert status == 200 and body == document()


@pytest.mark.parametrize("path", ["/no-such-route", "/sdk/latest-all/extra"])
def test_unknown_paths_get_a_json_404(demo_node: Node, path: str) -> None:
    relay, _, _ = demo_node
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(relay.url + path)
    assert e.value.code == 404 and codec.loads(e.value.read())["code"] == "http_error"
