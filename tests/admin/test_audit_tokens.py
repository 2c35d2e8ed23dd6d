"""The audit log (filters, cursor, revert), tokens (create, list, rotate, revoke, escalation refused), and
authentication (401s, the 429 burst per address) through /api/v1."""

from __future__ import annotations

from typing import Any

import httpx

from tests.admin.conftest import Api
from tests.integration.helpers import simple_flag

PROD = "/api/v1/environments/prod"
MERGE = {"Content-Type": "application/merge-patch+json"}


def audit(api: Api, token: str | None = None, **params: Any) -> httpx.Response:
    return api.call("GET", f"{PROD}/audit", token or api.root, params=params)


def test_audit_filters_and_cursor(api: Api) -> None:
    ann = api.token("writer", name="ann")
    for i in range(5):
        api.call("PUT", f"{PROD}/flags/f{i % 2}", ann, json=simple_flag(f"f{i % 2}", salt=str(i)))
    api.call("PUT", f"{PROD}/segments/s", api.root, json={"included": ["x"]})
    assert [e["key"] for e in audit(api, flag="f0").json()["entries"]] == ["f0"] * 3
    assert [e["kind"] for e in audit(api, segment="s").json()["entries"]] == ["segment"]
    assert {e["actor"] for e in audit(api, actor="ann").json()["entries"]} == {"ann"}
    pages, cursor = [], None
    while True:
        page = audit(api, actor="ann", limit=2, **({"cursor": cursor} if cursor else {})).json()
        pages.append([e["id"] for e in page["entries"]])
        if not (cursor := page["next"]):
            break
    assert [len(p) for p in pages] == [2, 2, 1] and len({i for p in pages for i in p}) == 5
    newest = audit(api, limit=1).json()["entries"][0]
    assert audit(api, until=str(newest["time"] - 1), actor="root").json()["entries"] == []
    assert len(audit(api, since=str(newest["time"])).json()["entries"]) >= 1
    old = audit(api, until="2000-01-01T00:00:00Z").json()
    assert (old["entries"], old["next"]) == ([], None) and old["history"]["trimmed"] is False
    demo = audit(api, actor="test").json()["entries"]  # written before tokens, on Redis directly
    assert demo and all(e["via"] == "direct-redis" and e["token"] is None for e in demo)
    for bad in (
        {"limit": "0"},
        {"limit": "x"},
        {"cursor": "nope"},
        {"since": "yesterday"},
        {"flag": "a", "segment": "b"},
    ):
        assert audit(api, **bad).status_code == 422, bad
    assert audit(api, api.token("reader", envs=("staging",))).status_code == 403
    assert audit(api, api.token("writer", flags=("x-*",))).status_code == 200  # globs limit writes only


def test_revert_writes_the_before_back_once(api: Api) -> None:
    api.call("PATCH", f"{PROD}/flags/checkout-kill-switch", api.root, headers=MERGE, json={"on": False})
    entry = audit(api, flag="checkout-kill-switch", limit=1).json()["entries"][0]
    url = f"{PROD}/audit/{entry['id']}/revert"
    assert api.call("POST", url, api.token("reader")).status_code == 403
    assert api.call("POST", url, api.token("writer", flags=("other-*",))).status_code == 403
    reverted = api.call("POST", url, api.root, json={"comment": "undo"})
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["item"]["on"] is True
    latest = audit(api, flag="checkout-kill-switch", limit=1).json()["entries"][0]
    assert latest["comment"] == "undo" and latest["before"]["on"] is False and latest["after"]["on"] is True
    again = api.call("POST", url, api.root)  # the item moved on since that entry
    assert again.status_code == 409 and again.json()["code"] == "version_conflict"

    api.call("PUT", f"{PROD}/flags/brand-new", api.root, json=simple_flag("brand-new"))
    creation = audit(api, flag="brand-new", limit=1).json()["entries"][0]
    assert api.call("POST", f"{PROD}/audit/{creation['id']}/revert", api.root).json()["item"]["deleted"] is True
    deletion = audit(api, flag="brand-new", limit=1).json()["entries"][0]
    back = api.call("POST", f"{PROD}/audit/{deletion['id']}/revert", api.root)
    assert back.status_code == 200 and back.json()["item"]["on"] is True
    env_entry = audit(api, limit=1000).json()["entries"][-1]
    assert env_entry["kind"] == "environment"
    assert api.call("POST", f"{PROD}/audit/{env_entry['id']}/revert", api.root).status_code == 422
    assert api.call("POST", f"{PROD}/audit/1-0/revert", api.root).status_code == 404


def test_tokens_lifecycle(api: Api) -> None:
    made = api.call("POST", "/api/v1/tokens", api.root, json={"name": "ann", "role": "writer", "envs": ["prod"],
                                                               "flags": ["checkout-*"], "expires": "7d"})  # fmt: skip
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == {"id", "token", "name", "role", "envs", "flags", "expires"}
    token = body["token"]
    assert token.startswith("relay_pat_")
    listed = api.call("GET", "/api/v1/tokens", api.root).json()["items"]
    assert {t["name"] for t in listed} == {"root", "ann"} and token not in str(listed)
    mine = api.call("GET", "/api/v1/tokens", token).json()["items"]
    assert [t["id"] for t in mine] == [body["id"]] and mine[0]["lastUsed"]
    rotated = api.call("POST", f"/api/v1/tokens/{body['id']}/rotate", token)  # itself
    assert rotated.status_code == 200 and rotated.json()["expires"] == body["expires"]
    new = rotated.json()["token"]
    assert api.call("GET", "/api/v1/tokens", token).status_code == 401
    assert api.call("GET", "/api/v1/tokens", new).status_code == 200
    longer = api.call("POST", f"/api/v1/tokens/{body['id']}/rotate", new, json={"expires": "30d"})
    assert longer.status_code == 403  # a token cannot extend itself
    revoked = api.call("DELETE", f"/api/v1/tokens/{body['id']}", api.root)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    gone = api.call("GET", "/api/v1/tokens", new)
    assert gone.status_code == 401 and gone.json() == {"code": "unauthorized", "message": "token revoked"}
    assert api.call("DELETE", "/api/v1/tokens/tok_000000000000", api.root).status_code == 404
    for bad in ({"name": "x"}, {"role": "reader"}, {"name": "x", "role": "owner"}, {"name": "x", "role": "reader",
                "expires": "2y"}, {"name": "x", "role": "reader", "envs": "prod"}, {"name": "x", "role": "reader",
                "extra": 1}, {"name": " ", "role": "reader"}):  # fmt: skip
        assert api.call("POST", "/api/v1/tokens", api.root, json=bad).status_code == 422, bad


def test_escalation_is_refused(api: Api) -> None:
    writer = api.token("writer", envs=("prod",), flags=("checkout-*",), expires="10d")
    admin = api.token("admin", envs=("prod",), expires="10d")
    other = api.call("POST", "/api/v1/tokens", api.root, json={"name": "ola", "role": "reader"}).json()["id"]

    def create(token: str, **body: Any) -> int:
        return api.call("POST", "/api/v1/tokens", token, json={"name": "x", **body}).status_code

    assert create(writer, role="admin") == 403  # a writer creating an admin
    assert create(writer, role="writer", envs=["prod"], flags=["checkout-*"]) == 403  # writers manage no tokens
    assert create(admin, role="reader") == 403  # all environments, from a prod-only admin
    assert create(admin, role="reader", envs=["staging"]) == 403
    assert create(admin, role="writer", envs=["prod"], expires="30d") == 403  # past its own expiry
    assert create(admin, role="writer", envs=["prod"], expires="5d") == 201
    assert api.call("POST", f"/api/v1/tokens/{other}/rotate", writer).status_code == 403  # someone else's
    assert api.call("DELETE", f"/api/v1/tokens/{other}", writer).status_code == 403
    assert api.call("GET", "/api/v1/tokens", writer).json()["items"][0]["role"] == "writer"  # itself only


def test_escalation_by_a_scoped_admin_is_refused(api: Api) -> None:
    """A wider admin's token revoked or rotated by a one-environment admin: 403. Flag globs cannot be widened
    through the API: only writers take globs, writers mint no tokens, and rotation keeps the scope (the glob
    rules themselves: tests/access/test_tokens.py, can_grant)."""
    narrow = api.token("admin", envs=("prod",), expires="10d", name="narrow")
    globbed = api.token("writer", envs=("prod",), flags=("checkout-*",), expires="10d", name="globbed")
    ids = {t["name"]: t["id"] for t in api.call("GET", "/api/v1/tokens", api.root).json()["items"]}
    for method, path in (("DELETE", f"/api/v1/tokens/{ids['root']}"), ("POST", f"/api/v1/tokens/{ids['root']}/rotate")):
        refused = api.call(method, path, narrow)
        assert refused.status_code == 403 and "wider than this token" in refused.json()["message"], path
    assert api.call("GET", "/api/v1/tokens", api.root).status_code == 200  # root untouched
    for flags in ([], ["*"], ["checkout-*", "pricing-*"]):
        body = {"name": "x", "role": "writer", "envs": ["prod"], "flags": flags, "expires": "5d"}
        assert api.call("POST", "/api/v1/tokens", globbed, json=body).status_code == 403, flags
    rotated = api.call("POST", f"/api/v1/tokens/{ids['globbed']}/rotate", globbed, json={"flags": []})
    assert rotated.status_code == 200 and rotated.json()["flags"] == ["checkout-*"]  # scope kept, extra ignored
    body = {"name": "x", "role": "admin", "envs": ["prod"], "flags": ["checkout-*"], "expires": "5d"}
    assert api.call("POST", "/api/v1/tokens", api.root, json=body).status_code == 422  # admins take no globs


def test_authentication_errors_and_the_failure_burst(api: Api) -> None:
    missing = api.call("GET", "/api/v1/tokens")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["code"] == "unauthorized"
    assert api.call("GET", "/api/v1/tokens", headers={"Authorization": "Basic abc"}).status_code == 401
    forged = api.root[:-6] + ("000000" if not api.root.endswith("000000") else "111111")  # bad checksum
    assert api.call("GET", "/api/v1/tokens", forged).json()["message"].startswith("malformed")
    statuses = [api.call("GET", "/api/v1/tokens", "relay_pat_nope").status_code for _ in range(12)]
    assert statuses[:7] == [401] * 7 and statuses[-1] == 429  # (earlier failures above count too)
    limited = api.call("GET", "/api/v1/tokens", api.root)  # even a good token, from this address
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 10
    assert limited.json()["code"] == "rate_limited"
    other = httpx.Client(base_url=str(api.client.base_url), transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:  # another address: unaffected (the limit's end is tests/admin/test_auth.py's)
        assert other.get("/api/v1/tokens", headers={"Authorization": f"Bearer {api.root}"}).status_code == 200


def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    r = api.call("GET", "/api/v1/nothing", api.root)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.call("PUT", "/api/v1/tokens", api.root).status_code == 405
