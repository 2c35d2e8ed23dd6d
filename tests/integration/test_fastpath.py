"""The fast path (relay.server.fastpath) answers exactly as the Starlette routes behind it.

One node in this process: a real Redis, `create_app` and its lifespan. Each request is an ASGI call
with the scope uvicorn builds (path percent-decoded, raw query string), made twice through the
fast path and twice straight to the Starlette app inside it, the response cache emptied before each
pair: every message sent, the exception left for the server to log, and what the requests did to
the response cache and the evaluation metric must be the same. A request the fast path must leave
alone has to reach the Starlette app, and one it takes must not.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from relay.access.environments import secure_mode_hash
from relay.app import create_app
from relay.config import Settings
from relay.evaluation import parse_context
from relay.server.fastpath import FastPath
from relay.server.node import Node
from relay.server.routes import client
from relay.wire.clientside import encode_context
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer

SECRET = "test-secret-key-0123456789abcdefghijklmnop"
STUDENT = {"kind": "user", "key": "zed", "userType": "student", "device": {"platform": "web"}}
PADDED = {"kind": "user", "key": "pad1"}  # 28 bytes of JSON: base64 with "==" padding
ORIGIN = ("origin", "https://app.example")


@dataclass
class InProcess:
    """One node in this process: the Starlette app, with the fast path in front of it."""

    runner: asyncio.Runner
    starlette: Starlette
    fast: FastPath  # in front of `starlette`, through a recorder of what reaches it
    reached: list[str]
    names: dict[str, str]  # what the cases' paths and headers are formatted with

    @property
    def node(self) -> Node:
        return self.starlette.state.node  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    redis = RedisServer(tmp_path_factory.mktemp("fastpath") / "redis").start()
    try:
        plain = demo_environment(redis.url, "plain")
        secure = demo_environment(redis.url, "secure", secret_key=SECRET)
        app = create_app(Settings(secret_key=SECRET), redis_url=redis.url)
        assert isinstance(app, FastPath) and isinstance(app.app, Starlette)
        starlette, reached = app.app, []

        async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
            reached.append(scope["path"])
            await starlette(scope, receive, send)

        padded = encode_context(PADDED)
        padded += "=" * (-len(padded) % 4)
        assert padded.endswith("==")
        h = secure_mode_hash(secure["sdk_key"], parse_context(STUDENT).fully_qualified_key)
        names = {
            "plain": plain["client_side_id"],
            "secure": secure["client_side_id"],
            "mobile": plain["mobile_key"],
            "sdk": plain["sdk_key"],
            "student": encode_context(STUDENT),
            "padded": quote(padded, safe=""),  # "%3D%3D" in the raw path
            "h": h,
            "H": h.upper(),
            "other_h": secure_mode_hash(secure["sdk_key"], "someone-else"),
            "not_json": base64.urlsafe_b64encode(b"{not json").decode().rstrip("="),
            "no_key": encode_context({"kind": "user"}),
            "empty_key": encode_context({"kind": "user", "key": ""}),
            "array": encode_context([1, 2]),
        }
        with asyncio.Runner() as runner:
            lifespan = starlette.router.lifespan_context(starlette)
            runner.run(lifespan.__aenter__())
            try:
                yield InProcess(runner, starlette, FastPath(recorder, starlette.state), reached, names)
            finally:
                runner.run(lifespan.__aexit__(None, None, None))
    finally:
        redis.stop()


@dataclass
class Answer:
    messages: list[Message]
    raised: str | None  # the exception the app left for the server to log
    effects: tuple[float, ...]  # response cache hits and misses, evaluations timed


def _effects(node: Node) -> tuple[float, ...]:
    timed = node.registry.get_sample_value("relay_evaluation_seconds_count", {"route": "evalx"}) or 0.0
    return node.responses.hits, node.responses.misses, timed


async def _call(app: Any, node: Node, method: str, target: str, headers: list[tuple[str, str]], root: str) -> Answer:
    raw_path, _, query = target.partition("?")
    scope: Scope = {  # as uvicorn's httptools protocol builds it
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": root,
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "state": {},
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    before = _effects(node)
    raised = None
    try:
        await app(scope, receive, send)
    except Exception as e:
        raised = repr(e)
    return Answer(messages, raised, tuple(b - a for a, b in zip(before, _effects(node), strict=True)))


def _both(n: InProcess, method: str, target: str, headers: tuple[tuple[str, str], ...], root: str = "") -> Any:
    target = target.format(**n.names)
    formatted = [(k, v.format(**n.names)) for k, v in headers]

    def twice(app: Any) -> list[Answer]:
        n.node.responses.clear()
        return [n.runner.run(_call(app, n.node, method, target, formatted, root)) for _ in range(2)]

    via_starlette = twice(n.starlette)
    n.reached.clear()
    via_fast = twice(n.fast)
    return via_starlette, via_fast, len(n.reached) == 2


BROWSER = "/sdk/evalx/{plain}/contexts/{student}"
MOBILE = "/msdk/evalx/contexts/{student}"
KEY = ("authorization", "api_key {mobile}")
CASES = [  # id, method, target, headers, status, taken by the fast path
    ("contexts", "GET", BROWSER, (), 200, True),
    ("users", "GET", "/sdk/evalx/{plain}/users/{student}", (), 200, True),
    ("with-reasons", "GET", BROWSER + "?withReasons=true", (), 200, True),
    ("users-reasons-origin", "GET", "/sdk/evalx/{plain}/users/{student}?withReasons=true", (ORIGIN,), 200, True),
    ("origin", "GET", BROWSER, (ORIGIN,), 200, True),
    ("two-origins", "GET", BROWSER, (ORIGIN, ("origin", "https://b.example")), 200, True),
    ("padding-percent-encoded", "GET", "/sdk/evalx/{plain}/contexts/{padded}", (ORIGIN,), 200, True),
    ("unknown-env", "GET", "/sdk/evalx/nope/contexts/{student}", (ORIGIN,), 404, True),
    ("bad-base64", "GET", "/sdk/evalx/{plain}/contexts/a", (ORIGIN,), 400, True),
    ("percent-in-context", "GET", "/sdk/evalx/{plain}/contexts/%25zz", (), 400, True),
    ("not-json", "GET", "/sdk/evalx/{plain}/contexts/{not_json}", (ORIGIN,), 400, True),
    ("no-key", "GET", "/sdk/evalx/{plain}/contexts/{no_key}", (), 400, True),
    ("empty-key", "GET", "/sdk/evalx/{plain}/users/{empty_key}", (ORIGIN,), 400, True),
    ("array", "GET", "/sdk/evalx/{plain}/contexts/{array}", (), 400, True),
    ("secure-h", "GET", "/sdk/evalx/{secure}/contexts/{student}?h={h}", (ORIGIN,), 200, True),
    ("secure-h-upper", "GET", "/sdk/evalx/{secure}/users/{student}?withReasons=true&h={H}", (), 200, True),
    ("secure-wrong-h", "GET", "/sdk/evalx/{secure}/contexts/{student}?h={other_h}", (ORIGIN,), 400, True),
    ("secure-no-h", "GET", "/sdk/evalx/{secure}/contexts/{student}", (ORIGIN,), 400, True),
    ("secure-empty-h", "GET", "/sdk/evalx/{secure}/contexts/{student}?h=", (), 400, True),
    ("secure-last-h-counts", "GET", "/sdk/evalx/{secure}/contexts/{student}?h={other_h}&h={h}", (), 200, True),
    ("mobile", "GET", MOBILE, (KEY,), 200, True),
    ("mobile-raw-key", "GET", MOBILE + "?withReasons=true", (("authorization", "{mobile}"),), 200, True),
    ("mobile-users-origin", "GET", "/msdk/evalx/users/{student}", (KEY, ORIGIN), 200, True),
    ("mobile-no-key", "GET", MOBILE, (), 401, True),
    ("mobile-sdk-key", "GET", MOBILE, (("authorization", "{sdk}"),), 401, True),
    ("mobile-first-key-counts", "GET", MOBILE, (("authorization", "nope"), KEY), 401, True),
    ("mobile-bad-context", "GET", "/msdk/evalx/contexts/{not_json}", (KEY,), 400, True),
    ("all-no-key", "GET", "/all", (), 401, True),
    ("flags-bad-key", "GET", "/flags", (("authorization", "nope"),), 401, True),
    ("trailing-slash", "GET", BROWSER + "/", (ORIGIN,), 307, False),
    ("extra-segment", "GET", BROWSER + "/x", (), 404, False),
    ("slash-percent-encoded", "GET", "/sdk/evalx/{plain}/contexts/ab%2Fcd", (), 404, False),
    ("empty-env", "GET", "/sdk/evalx//contexts/{student}", (), 404, False),
    ("mobile-trailing-slash", "GET", MOBILE + "/", (KEY,), 307, False),
    ("mobile-empty-context", "GET", "/msdk/evalx/contexts/", (KEY,), 404, False),
    ("mobile-extra-segment", "GET", "/msdk/evalx/contexts/x/{student}", (KEY,), 404, False),
    ("head", "HEAD", BROWSER, (ORIGIN,), 200, False),
    ("options", "OPTIONS", BROWSER, (ORIGIN,), 200, False),
    ("report-on-get-path", "REPORT", BROWSER, (), 405, False),
    ("post", "POST", MOBILE, (KEY,), 405, False),
    ("goals", "GET", "/sdk/goals/{plain}", (ORIGIN,), 200, False),
    ("all-slash", "GET", "/all/", (), 307, False),
]


@pytest.mark.parametrize(
    ("method", "target", "headers", "status", "fast"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_fast_path_answers_as_starlette_does(
    in_process: InProcess, method: str, target: str, headers: tuple[tuple[str, str], ...], status: int, fast: bool
) -> None:
    via_starlette, via_fast, passed_on = _both(in_process, method, target, headers)
    assert via_fast == via_starlette
    assert passed_on is not fast
    assert via_fast[0].messages[0]["status"] == status, via_fast[0].messages
    if target.startswith("/sdk/evalx/") and fast:  # CORS on browser answers, errors included
        assert (b"vary", b"Origin") in via_fast[0].messages[0]["headers"]
    if status == 200 and fast:  # evaluated once, then from the response cache
        assert [a.effects for a in via_fast] == [(0, 1, 1), (1, 0, 0)]


def test_under_a_root_path_everything_goes_to_starlette(in_process: InProcess) -> None:
    via_starlette, via_fast, passed_on = _both(in_process, "GET", "/relay" + BROWSER, (ORIGIN,), root="/relay")
    assert via_fast == via_starlette and passed_on
    assert via_fast[0].messages[0]["status"] == 200


@pytest.mark.parametrize(("target", "headers"), [(BROWSER, (ORIGIN,)), (MOBILE, (KEY,))], ids=["browser", "mobile"])
def test_an_unexpected_error_is_a_plain_500_and_raised_for_the_server_to_log(
    in_process: InProcess, monkeypatch: pytest.MonkeyPatch, target: str, headers: tuple[tuple[str, str], ...]
) -> None:
    def broken(*args: object) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(client, "evalx_body", broken)
    via_starlette, via_fast, passed_on = _both(in_process, "GET", target, headers)
    assert via_fast == via_starlette and not passed_on
    assert via_fast[0].raised == "RuntimeError('boom')"
    assert via_fast[0].messages == [
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-length", b"21"), (b"content-type", b"text/plain; charset=utf-8")],
        },
        {"type": "http.response.body", "body": b"Internal Server Error"},
    ]
