"""Property tests over HTTP against a live node: arbitrary bytes, strings and JSON as contexts and
bodies of the evaluation routes. Every answer is the one relay's own parsers predict (200 when the
input is a usable context, else a 4xx JSON error naming the problem), never a 5xx.
Deterministic (derandomized, no example database), bounded to a few seconds per test."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.errors import ValidationError
from relay.evaluation.reader import MAX_DEPTH
from relay.wire import codec
from relay.wire.clientside import context_from_json
from relay.wire.ofrep import OfrepError, to_context
from tests.evaluation.test_properties import contexts, json_values, mutated
from tests.integration.redis_server import RedisServer
from tests.integration.relay_process import RelayProcess

SETTINGS = settings(
    max_examples=120, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
FLAG = "student-discount"


@pytest.fixture(scope="module")
def node(demo_node: tuple[RelayProcess, RedisServer, dict[str, str]]) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    relay, _, secrets = demo_node
    with httpx.Client(base_url=relay.url, timeout=10) as http:
        yield http, secrets


def nested(levels: int) -> bytes:
    """A context whose attribute is `levels` arrays deep, as JSON text (orjson will not write past 255)."""
    return b'{"kind":"user","key":"k","a":' + b"[" * levels + b"]" * levels + b"}"


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()  # the stdlib writes integers past 64 bits, which orjson refuses


# Bodies: arbitrary bytes, arbitrary JSON, valid contexts, contexts with one part replaced, deep nesting.
context_bytes = st.one_of(
    st.binary(max_size=64),
    json_values.map(as_json),
    contexts.map(as_json),
    mutated(contexts).map(as_json),
    st.integers(MAX_DEPTH - 3, 1100).map(nested),
)


def accepts(raw: bytes) -> str | None:
    """None if relay should evaluate this context, else the JSON path its error must name."""
    try:
        context_from_json(raw)
    except ValidationError as e:
        return e.path
    return None


def check(response: httpx.Response, problem: str | None) -> None:
    assert response.status_code < 500, response.text[:500]
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    if problem is None:
        assert response.status_code == 200, body
        assert isinstance(body, dict) and all({"value", "variation", "version"} <= set(v) for v in body.values())
    else:
        assert response.status_code == 400, body
        assert body["code"] == "invalid_context" and body["message"].startswith(problem), (body, problem)


@SETTINGS
@given(raw=context_bytes, padded=st.booleans())
def test_base64_context_segments(node: tuple[httpx.Client, dict[str, str]], raw: bytes, padded: bool) -> None:
    http, secrets = node
    segment = base64.urlsafe_b64encode(raw).decode()
    segment = segment if padded else segment.rstrip("=")
    if not segment:
        return  # an empty path segment is a different route
    problem = accepts(raw)
    check(http.get(f"/sdk/evalx/{secrets['client_side_id']}/contexts/{segment}"), problem)
    check(http.get(f"/msdk/evalx/users/{segment}", headers={"Authorization": secrets["mobile_key"]}), problem)


@SETTINGS
@given(text=st.text(min_size=1, max_size=40))
def test_arbitrary_path_segments(node: tuple[httpx.Client, dict[str, str]], text: str) -> None:
    http, secrets = node
    for path in (
        f"/sdk/evalx/{secrets['client_side_id']}/contexts/{quote(text, safe='')}",
        f"/sdk/evalx/{quote(text, safe='')}/contexts/e30",
    ):
        response = http.get(path)
        if response.status_code == 307:  # an escaped "/" ending the path: Starlette redirects without the slash
            assert text.endswith("/") and response.headers["location"]
            continue
        assert response.status_code in (200, 400, 404), (path, response.status_code, response.text[:300])
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        if response.status_code != 200:
            assert body["code"] and body["message"], body


@SETTINGS
@given(raw=context_bytes)
def test_report_bodies(node: tuple[httpx.Client, dict[str, str]], raw: bytes) -> None:
    http, secrets = node
    problem = accepts(raw)
    json_type = {"Content-Type": "application/json"}
    env_id = secrets["client_side_id"]
    check(http.request("REPORT", f"/sdk/evalx/{env_id}/context", content=raw, headers=json_type), problem)
    mobile = {**json_type, "Authorization": secrets["mobile_key"]}
    check(http.request("REPORT", "/msdk/evalx/user", content=raw, headers=mobile), problem)
    # The stream routes take the same bodies; a stream that opens is left at once.
    with http.stream("REPORT", f"/eval/{env_id}", content=raw, headers=json_type) as stream:
        if problem is None:
            assert stream.status_code == 200 and stream.headers["content-type"] == "text/event-stream"
        else:
            stream.read()
            assert stream.status_code == 400 and stream.json()["message"].startswith(problem)


ofrep_bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(as_json),
    st.fixed_dictionaries({"context": json_values}).map(as_json),
    contexts.map(lambda c: as_json({"context": {**c, "targetingKey": c.get("key")}})),
    mutated(contexts.map(lambda c: {"context": {**c, "targetingKey": c.get("key")}})).map(as_json),
    st.integers(MAX_DEPTH - 3, 1100).map(lambda n: b'{"context":' + nested(n) + b"}"),
)


def ofrep_expectation(raw: bytes) -> tuple[int, str | None]:
    """The status and errorCode relay's OFREP mapping predicts for this body."""
    try:
        body = codec.loads(raw)
    except ValidationError:
        return 400, "PARSE_ERROR"
    try:
        to_context(body)
    except OfrepError as e:
        return e.status_code, e.code
    return 200, None


@SETTINGS
@given(raw=ofrep_bodies, credential=st.sampled_from(("sdk_key", "mobile_key", "client_side_id")))
def test_ofrep_bodies(node: tuple[httpx.Client, dict[str, str]], raw: bytes, credential: str) -> None:
    http, secrets = node
    status, code = ofrep_expectation(raw)
    headers = {"Authorization": f"Bearer {secrets[credential]}"}
    for path in (f"/ofrep/v1/evaluate/flags/{FLAG}", "/ofrep/v1/evaluate/flags"):
        response = http.post(path, content=raw, headers=headers)
        assert response.status_code == status, (path, response.text[:500])
        body = response.json()
        if code is None:
            assert ("flags" in body) if path.endswith("flags") else (body["key"] == FLAG and "reason" in body)
        else:
            assert body["errorCode"] == code and body["errorDetails"], body


def test_a_corrupt_gzip_body_is_a_400_not_a_500(node: tuple[httpx.Client, dict[str, str]]) -> None:
    """A gzip header over a broken deflate stream raised zlib.error, which read_body did not catch."""
    http, secrets = node
    corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage"
    gzipped = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    events = http.post(f"/events/bulk/{secrets['client_side_id']}", content=corrupt, headers=gzipped)
    assert events.status_code == 400 and events.json() == {
        "code": "invalid_input",
        "message": "body: invalid gzip data",
    }
    report = http.request("REPORT", f"/sdk/evalx/{secrets['client_side_id']}/context", content=corrupt, headers=gzipped)
    assert report.status_code == 400 and report.json()["message"] == "body: invalid gzip data"
    ofrep = http.post("/ofrep/v1/evaluate/flags", content=corrupt, headers={**gzipped, "X-API-Key": secrets["sdk_key"]})
    assert ofrep.status_code == 400 and ofrep.json()["errorCode"] == "PARSE_ERROR"


TOO_DEEP = "a" + "[0]" * (MAX_DEPTH - 1) + f": nested more than {MAX_DEPTH} levels deep"


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (MAX_DEPTH, TOO_DEEP),
        (254, TOO_DEEP),
        (300, TOO_DEEP),  # 256+ levels used to be a 500
        (1023, TOO_DEEP),
        (1024, "context: invalid JSON: depth limit exceeded"),  # past what orjson reads
    ],
)
def test_deeply_nested_contexts_are_refused_with_the_path(
    node: tuple[httpx.Client, dict[str, str]], levels: int, message: str
) -> None:
    """orjson reads 1024 levels but writes 255: a context nested 256+ deep once got through parsing,
    then failed to encode as the response cache key (a 500)."""
    http, secrets = node
    segment = base64.urlsafe_b64encode(nested(levels)).decode().rstrip("=")
    response = http.get(f"/sdk/evalx/{secrets['client_side_id']}/contexts/{segment}")
    assert response.status_code == 400, response.text[:300]
    assert response.json()["message"].startswith(message)
