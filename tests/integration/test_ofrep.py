"""OFREP against a real node: the real OpenFeature SDK and OFREP provider, and raw requests."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from relay.store.writes import WritePath
from tests.integration.helpers import run_async, storage_for
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess


@pytest.fixture(scope="module")
def node(
    demo_node: tuple[RelayProcess, RedisServer, dict[str, str]],
) -> tuple[RelayProcess, RedisServer, dict[str, str]]:
    _, redis, _ = demo_node

    async def add_float_flag() -> None:
        admin = WritePath(storage_for(redis.url), actor="test")
        flag = {"key": "ratio", "on": True, "variations": [0.5, 2.0], "fallthrough": {"variation": 1}}
        await admin.put_item("prod", "flag", flag)

    run_async(add_float_flag())
    relay, _, secrets = demo_node
    with httpx.Client(base_url=relay.url, timeout=5) as http:  # the node has applied it
        deadline = time.monotonic() + 10
        while http.get("/sdk/latest-flags/ratio", headers={"Authorization": secrets["sdk_key"]}).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    return demo_node


def client_with(relay: RelayProcess, credential: str) -> Any:
    api.set_provider(OFREPProvider(relay.url, headers_factory=lambda: {"Authorization": f"Bearer {credential}"}))
    return api.get_client()


def test_openfeature_sdk_with_the_sdk_key(node: tuple[RelayProcess, RedisServer, dict[str, str]]) -> None:
    relay, redis, secrets = node
    client = client_with(relay, secrets["sdk_key"])
    student = EvaluationContext(targeting_key="zed", attributes={"userType": "student", "email": "z@example.com"})
    d = client.get_string_details("student-discount", "none", student)
    assert (d.value, d.reason, d.variant) == ("banner-b", Reason.SPLIT, "2")
    d = client.get_boolean_details("checkout-kill-switch", False, student)
    assert (d.value, d.reason) == (True, Reason.STATIC)
    d = client.get_boolean_details("internal-debug-panel", False, student)
    assert (d.value, d.reason, d.variant) == (True, Reason.TARGETING_MATCH, "1")  # server-side flag: visible
    assert client.get_float_details("ratio", 0.0, student).value == 2.0
    missing = client.get_boolean_details("nope", False, student)
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND and missing.value is False
    no_key = client.get_boolean_details("checkout-kill-switch", False, EvaluationContext())
    assert no_key.error_code == ErrorCode.TARGETING_KEY_MISSING

    async def toggle() -> None:
        admin = WritePath(storage_for(redis.url), actor="test")
        await admin.toggle("prod", "checkout-kill-switch", False)
        await admin.storage.close()

    run_async(toggle())

    deadline = time.monotonic() + 5
    while client.get_boolean_value("checkout-kill-switch", True, student) and time.monotonic() < deadline:
        time.sleep(0.02)
    d = client.get_boolean_details("checkout-kill-switch", True, student)
    assert (d.value, d.reason) == (False, Reason.DISABLED)


def test_client_side_id_sees_only_client_side_flags(node: tuple[RelayProcess, RedisServer, dict[str, str]]) -> None:
    relay, _, secrets = node
    client = client_with(relay, secrets["client_side_id"])
    ctx = EvaluationContext(targeting_key="zed")
    assert client.get_boolean_details("internal-debug-panel", False, ctx).error_code == ErrorCode.FLAG_NOT_FOUND
    assert client.get_boolean_details("new-search", True, ctx).error_code is None


def test_bulk_etag_cors_and_errors(node: tuple[RelayProcess, RedisServer, dict[str, str]]) -> None:
    relay, _, secrets = node
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        auth = {"X-API-Key": secrets["client_side_id"], "Origin": "https://app.example"}
        body = {"context": {"targetingKey": "zed", "userType": "student"}}
        got = http.post("/ofrep/v1/evaluate/flags", json=body, headers=auth)
        assert got.status_code == 200
        keys = {item["key"] for item in got.json()["flags"]}
        assert "student-discount" in keys and "internal-debug-panel" not in keys
        assert "ETag" in got.headers["access-control-expose-headers"]
        assert got.headers["access-control-allow-origin"] == "https://app.example"
        again = http.post("/ofrep/v1/evaluate/flags", json=body, headers={**auth, "If-None-Match": got.headers["etag"]})
        assert again.status_code == 304
        other = http.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "amy"}}, headers=auth)
        assert other.headers["etag"] != got.headers["etag"]
        pre = http.options("/ofrep/v1/evaluate/flags", headers={"Origin": "https://app.example"})
        assert pre.status_code == 200 and "If-None-Match" in pre.headers["access-control-allow-headers"]
        multi = {"context": {"kind": "multi", "user": {"targetingKey": "zed"}, "org": {"key": "acme"}}}
        assert http.post("/ofrep/v1/evaluate/flags/new-search", json=multi, headers=auth).status_code == 200
        cases = [
            ({}, {"context": {"targetingKey": "z"}}, 401, None),
            ({"Authorization": "Bearer nope"}, {"context": {"targetingKey": "z"}}, 401, None),
            (auth, {"context": {}}, 400, "TARGETING_KEY_MISSING"),
            (auth, {"context": {"targetingKey": 5}}, 400, "INVALID_CONTEXT"),
            (auth, {"context": {"kind": "kind", "targetingKey": "z"}}, 400, "INVALID_CONTEXT"),
            (auth, [], 400, "INVALID_CONTEXT"),
        ]
        for headers, payload, status, code in cases:
            r = http.post("/ofrep/v1/evaluate/flags/new-search", json=payload, headers=headers)
            assert r.status_code == status, (payload, r.text)
            assert code is None or (r.json()["errorCode"] == code and r.json()["errorDetails"])
        bad = http.post("/ofrep/v1/evaluate/flags/x", content=b"{oops", headers=auth)
        assert bad.status_code == 400 and bad.json()["errorCode"] == "PARSE_ERROR"
        assert http.get("/ofrep/v1/evaluate/flags", headers=auth).status_code == 405
