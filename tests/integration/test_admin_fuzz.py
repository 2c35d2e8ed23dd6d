"""Every admin route fuzzed by schemathesis against a live node's admin listener, with a valid admin token.

The operations come from relay/admin/openapi.json (served at the admin listener's /openapi.json). Each
gets a bounded, derandomized run of positive and negative cases, half of them aimed at the demo
environment and its real items, so that fuzzing reaches past lookups into validation and the write path.
Checks: no 5xx, and every status code, content type, response header and body is one the document declares.
Authentication itself is tested in tests/admin (the failed-auth limit would turn fuzzed bad tokens into 429s).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
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

from relay.admin.app import document
from relay.wire import codec
from tests.admin.conftest import break_glass_token
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

CONFIG = schemathesis.Config.from_dict({"request-timeout": 10})
SCHEMA = schemathesis.openapi.from_dict(codec.loads(document()), config=CONFIG)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
KEYS = ("checkout-kill-switch", "student-discount")


@pytest.fixture(scope="module")
def admin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayProcess, str]]:
    tmp = tmp_path_factory.mktemp("admin-fuzz")
    redis = RedisServer(tmp / "redis").start()
    demo_environment(redis.url)
    root = break_glass_token(redis.url, expires="300d")
    relay = RelayProcess(redis.url, tmp / "relay").start()
    yield relay, root
    relay.stop()
    redis.stop()


def _aim(case: Any, root: str, pick: int) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {root}"}
    params = dict(case.path_parameters or {})
    if pick % 2:
        if "env" in params:
            params["env"] = "prod"
        if "key" in params:
            params["key"] = KEYS[pick % len(KEYS)]
    case.path_parameters = params


@SCHEMA.parametrize()
@SCHEMA.given(pick=st.integers(0, 5))
@settings(max_examples=25, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_admin_route_fails_or_breaks_its_contract(
    case: Any, pick: int, admin_node: tuple[RelayProcess, str]
) -> None:
    relay, root = admin_node
    _aim(case, root, pick)
    case.call_and_validate(base_url=relay.admin_url, checks=CHECKS)


def test_the_node_survived(admin_node: tuple[RelayProcess, str]) -> None:
    relay, root = admin_node
    assert relay.proc is not None and relay.proc.poll() is None, "the node exited"
    r = httpx.get(relay.admin_url + "/api/v1/tokens", headers={"Authorization": f"Bearer {root}"})
    assert r.status_code == 200
    assert httpx.get(relay.admin_url + "/openapi.json").content == document()
    log = relay.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-4000:]
