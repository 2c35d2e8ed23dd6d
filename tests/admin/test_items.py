"""Flags and segments through /api/v1: reads, PUT, PATCH (merge and JSON Patch), DELETE, ETag and If-Match,
validation paths, comments, and the audit entry of each write naming the token's owner and id."""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.conftest import Api
from tests.integration.helpers import simple_flag

FLAGS = "/api/v1/environments/prod/flags"
KILL = f"{FLAGS}/checkout-kill-switch"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def last_audit(api: Api, **params: Any) -> dict[str, Any]:
    r = api.call("GET", "/api/v1/environments/prod/audit", api.root, params={"limit": 1, **params})
    assert r.status_code == 200, r.text
    return r.json()["entries"][0]  # type: ignore[no-any-return]


def token_id(api: Api, token: str) -> str:
    return str(api.call("GET", "/api/v1/tokens", token).json()["items"][0]["id"])


def test_list_and_get_with_etag(api: Api) -> None:
    listed = api.call("GET", FLAGS, api.root)
    assert listed.status_code == 200 and "checkout-kill-switch" in {f["key"] for f in listed.json()["items"]}
    got = api.call("GET", KILL, api.root)
    assert got.status_code == 200 and got.headers["etag"] == f'"{got.json()["version"]}"'
    missing = api.call("GET", f"{FLAGS}/nope", api.root)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api.call("GET", "/api/v1/environments/nowhere/flags", api.root).status_code == 404
    segments = api.call("GET", "/api/v1/environments/prod/segments", api.root)
    assert segments.status_code == 200 and isinstance(segments.json()["items"], list)


def test_the_kill_switch_as_a_merge_patch_is_a_toggle_audited_with_the_token(api: Api) -> None:
    ann = api.token("writer", name="ann", envs=("prod",))
    r = api.call("PATCH", KILL, ann, headers=MERGE, json={"on": False, "comment": "incident 7"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["item"]["on"] is False
        and body["unchanged"] is False
        and r.headers["etag"] == f'"{body["item"]["version"]}"'
    )
    entry = last_audit(api, flag="checkout-kill-switch")
    assert entry["action"] == "toggle" and entry["actor"] == "ann" and entry["via"] == "api"
    assert entry["token"] == token_id(api, ann) and entry["comment"] == "incident 7"
    again = api.call("PATCH", KILL, ann, headers=MERGE, json={"on": False})
    assert again.status_code == 200 and again.json()["unchanged"] is True and again.json()["dataVersion"] is None


def test_put_creates_replaces_and_refuses_with_the_json_path(api: Api) -> None:
    url = f"{FLAGS}/new-flag"
    created = api.call("PUT", url, api.root, json={**simple_flag("new-flag"), "comment": "launch"})
    assert created.status_code == 200 and created.json()["item"]["version"] == 1
    assert last_audit(api, flag="new-flag")["comment"] == "launch"
    replaced = api.call("PUT", url, api.root, json=simple_flag("new-flag", on=False),
                        headers={"X-Relay-Comment": "from the header"})  # fmt: skip
    assert replaced.json()["item"]["version"] == 2 and replaced.json()["item"]["on"] is False
    assert last_audit(api, flag="new-flag")["comment"] == "from the header"
    # What LaunchDarkly's SDKs evaluate (to MALFORMED_FLAG here) is written with a warning at its path
    # (issue 18); ?strict=true refuses it with that path, writing nothing.
    odd = simple_flag("new-flag", fallthrough={"variation": 9})
    bad = api.call("PUT", f"{url}?strict=true", api.root, json=odd)
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "invalid_input" and bad.json()["path"].startswith("flags.new-flag.fallthrough")
    warned = api.call("PUT", url, api.root, json=odd)
    assert warned.status_code == 200, warned.text
    assert [w["path"] for w in warned.json()["warnings"]] == ["flags.new-flag.fallthrough.variation"]
    api.call("PUT", url, api.root, json=simple_flag("new-flag", on=False))  # back as it was
    assert api.call("PUT", url, api.root, json=simple_flag("other")).status_code == 422  # key mismatch
    assert api.call("PUT", url, api.root, json=[1]).status_code == 422
    not_json = api.call("PUT", url, api.root, content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422
    wrong_type = api.call("PUT", url, api.root, content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415


def test_if_match_makes_writes_conditional(api: Api) -> None:
    url = f"{FLAGS}/cond"
    assert api.call("PUT", url, api.root, json=simple_flag("cond"), headers={"If-None-Match": "*"}).status_code == 200
    again = api.call("PUT", url, api.root, json=simple_flag("cond"), headers={"If-None-Match": "*"})
    assert again.status_code == 412 and again.json()["code"] == "precondition_failed"
    stale = api.call("PUT", url, api.root, json=simple_flag("cond", on=False), headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    fresh = api.call("PUT", url, api.root, json=simple_flag("cond", on=False), headers={"If-Match": '"1"'})
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'
    assert api.call("PATCH", url, api.root, headers={**MERGE, "If-Match": '"1"'}, json={"on": True}).status_code == 412
    assert api.call("PATCH", url, api.root, headers={**MERGE, "If-Match": '"2"'}, json={"on": True}).status_code == 200
    assert api.call("PATCH", url, api.root, headers={**MERGE, "If-Match": 'W/"3"'}, json={}).status_code == 412
    assert api.call("PATCH", url, api.root, headers={**MERGE, "If-Match": "*"}, json={"on": False}).status_code == 200
    assert api.call("DELETE", url, api.root, headers={"If-Match": '"1"'}).status_code == 412
    gone = api.call("DELETE", url, api.root, headers={"If-Match": '"4"'})
    assert gone.status_code == 200 and gone.json()["item"]["deleted"] is True
    assert api.call("DELETE", url, api.root).status_code == 404
    assert (
        api.call("PATCH", f"{FLAGS}/absent", api.root, headers={**MERGE, "If-Match": "*"}, json={}).status_code == 404
    )
    assert api.call("PUT", f"{FLAGS}/absent", api.root, json=simple_flag("absent"),
                    headers={"If-Match": "*"}).status_code == 412  # fmt: skip


def test_json_patch_and_patch_refusals(api: Api) -> None:
    ops = [{"op": "test", "path": "/on", "value": True}, {"op": "replace", "path": "/description", "value": "x"}]
    r = api.call("PATCH", KILL, api.root, headers=JSON_PATCH, json={"patch": ops, "comment": "describe"})
    assert r.status_code == 200 and r.json()["item"]["description"] == "x", r.text
    assert last_audit(api)["action"] == "update" and last_audit(api)["comment"] == "describe"
    failed = api.call("PATCH", KILL, api.root, headers=JSON_PATCH, json=[{"op": "test", "path": "/on", "value": 1}])
    assert failed.status_code == 422 and failed.json()["path"] == "patch"
    rekey = api.call("PATCH", KILL, api.root, headers=MERGE, json={"key": "other"})
    assert rekey.status_code == 422 and rekey.json()["path"].endswith(".key")
    bad = api.call("PATCH", KILL, api.root, headers=MERGE, json={"offVariation": "x"})  # a type: always refused
    assert bad.status_code == 422 and "offVariation" in bad.json()["path"]
    assert api.call("PATCH", KILL, api.root, json={"on": False}).status_code == 415  # plain JSON: which patch?
    assert api.call("PATCH", f"{FLAGS}/nope", api.root, headers=MERGE, json={"on": False}).status_code == 404


def test_segments_write_like_flags(api: Api) -> None:
    url = "/api/v1/environments/prod/segments/beta"
    put = api.call("PUT", url, api.root, json={"included": ["ann"]})
    assert put.status_code == 200 and put.json()["item"]["included"] == ["ann"]
    patched = api.call("PATCH", url, api.root, headers=MERGE, json={"excluded": ["bob"]})
    assert patched.json()["item"]["excluded"] == ["bob"] and patched.headers["etag"] == '"2"'
    assert api.call("DELETE", url, api.root).status_code == 200
    assert api.call("GET", url, api.root).status_code == 404


@pytest.mark.parametrize(
    ("role", "envs", "flags", "method", "path", "status"),
    [
        ("reader", (), (), "GET", KILL, 200),
        ("reader", (), (), "PATCH", KILL, 403),
        ("reader", ("staging",), (), "GET", KILL, 403),
        ("writer", ("prod",), ("checkout-*",), "PATCH", KILL, 200),
        ("writer", ("prod",), ("other-*",), "PATCH", KILL, 403),
        ("writer", ("prod",), ("checkout-*",), "PATCH", "/api/v1/environments/prod/segments/beta", 403),
        ("writer", ("staging",), (), "PATCH", KILL, 403),
        ("writer", (), (), "DELETE", KILL, 200),
    ],
    ids=[
        "reader-reads",
        "reader-writes",
        "reader-other-env",
        "glob-matches",
        "glob-misses",
        "glob-no-segments",
        "writer-other-env",
        "writer-deletes",
    ],
)
def test_scopes(api: Api, role: str, envs: tuple[str, ...], flags: tuple[str, ...], method: str, path: str,
                status: int) -> None:  # fmt: skip
    api.call("PUT", "/api/v1/environments/prod/segments/beta", api.root, json={"included": ["ann"]})
    token = api.token(role, envs=envs, flags=flags)
    r = api.call(method, path, token, **({"headers": MERGE, "json": {"on": False}} if method == "PATCH" else {}))
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["code"] == "forbidden" and r.json()["message"]
