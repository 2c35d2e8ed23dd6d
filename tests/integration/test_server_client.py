"""Browser and mobile routes against a real relay node: evalx, CORS, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from relay.cli.demo import demo_document
from relay.evaluation import Snapshot, parse_context, parse_items
from tests.integration.helpers import b64
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

STUDENT = {"kind": "user", "key": "zed", "userType": "student", "device": {"platform": "web"}}


@pytest.fixture(scope="module")
def node(demo_node: tuple[RelayProcess, RedisServer, dict[str, str]]) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    relay, _, secrets = demo_node
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        yield http, secrets


def expected(ctx: dict[str, Any], audience: str, with_reasons: bool = False) -> dict[str, Any]:
    flags, segments = parse_items(demo_document(), default_version=1)
    snap = Snapshot(flags, segments)
    out = {}
    for key, flag in flags.items():
        if not (flag.client_side if audience == "browser" else flag.mobile):
            continue
        r = snap.evaluate(key, parse_context(ctx))
        state: dict[str, Any] = {"value": r.value, "variation": r.variation, "version": 1, "flagVersion": 1}
        if r.reason.in_experiment:
            state |= {"trackEvents": True, "trackReason": True}
        if with_reasons or r.reason.in_experiment:
            state["reason"] = r.reason.to_dict()
        out[key] = state
    return out


def test_evalx_get_and_report_show_only_client_side_flags(node: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secrets = node
    env_id = secrets["client_side_id"]
    got = http.get(f"/sdk/evalx/{env_id}/contexts/{b64(STUDENT)}")
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    body = got.json()
    assert body == expected(STUDENT, "browser")
    assert "internal-debug-panel" not in body  # not available to client-side SDKs
    assert body["pricing-page-experiment"]["trackReason"] is True
    report = http.request("REPORT", f"/sdk/evalx/{env_id}/context", json=STUDENT)
    assert report.json() == body
    with_reasons = http.get(f"/sdk/evalx/{env_id}/users/{b64(STUDENT)}?withReasons=true").json()
    assert with_reasons == expected(STUDENT, "browser", with_reasons=True)
    old_user = {"key": "zed", "custom": {"userType": "student"}}
    assert http.get(f"/sdk/evalx/{env_id}/users/{b64(old_user)}").json()["student-discount"]["value"] == "banner-b"


def test_mobile_evalx_uses_the_mobile_key(node: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secrets = node
    auth = {"Authorization": f"api_key {secrets['mobile_key']}"}
    got = http.get(f"/msdk/evalx/contexts/{b64(STUDENT)}", headers=auth)
    assert got.status_code == 200 and got.json() == expected(STUDENT, "mobile")
    assert (
        http.get(f"/msdk/evalx/contexts/{b64(STUDENT)}", headers={"Authorization": secrets["sdk_key"]}).status_code
        == 401
    )
    assert http.request("REPORT", "/msdk/evalx/context", json=STUDENT, headers=auth).status_code == 200


def test_cors_for_browsers(node: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secrets = node
    path = f"/sdk/evalx/{secrets['client_side_id']}/context"
    pre = http.options(path, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "REPORT"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert "REPORT" in pre.headers["access-control-allow-methods"]
    assert "X-LaunchDarkly-User-Agent" in pre.headers["access-control-allow-headers"]
    got = http.request("REPORT", path, json=STUDENT, headers={"Origin": "https://app.example"})
    assert got.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in http.get("/sdk/latest-all").headers  # server-side: no CORS
    goals = http.get(f"/sdk/goals/{secrets['client_side_id']}")
    assert goals.json() == [] and goals.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/sdk/evalx/nope/contexts/{ctx}", {}, 404),
        ("GET", "/sdk/evalx/{env}/contexts/%%%", {}, 400),
        ("GET", "/sdk/evalx/{env}/contexts/" + b64({"kind": "user"}), {}, 400),
        ("GET", "/sdk/evalx/{env}/contexts/" + b64({"key": ""}), {}, 400),
        ("GET", "/sdk/evalx/{env}/contexts/" + b64([1, 2]), {}, 400),
        (
            "REPORT",
            "/sdk/evalx/{env}/context",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("REPORT", "/sdk/evalx/{env}/context", {"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),
        (
            "REPORT",
            "/sdk/evalx/{env}/context",
            {"content": b" " * 2_000_000, "headers": {"Content-Type": "application/json"}},
            413,
        ),
        ("POST", "/sdk/evalx/{env}/context", {"json": {}}, 405),
    ],
)
def test_bad_client_requests_get_4xx_with_json(
    node: tuple[httpx.Client, dict[str, str]], method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    http, secrets = node
    url = path.format(env=secrets["client_side_id"], ctx=b64(STUDENT))
    got = http.request(method, url, **kwargs)
    assert got.status_code == status, got.text
    assert isinstance(got.json(), dict)
