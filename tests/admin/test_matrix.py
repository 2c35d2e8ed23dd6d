"""The token matrix: role × environment scope × flag globs × expired × revoked × malformed, over the admin
routes, each answering exactly 200/201, 401 or 403 as docs/security.md specifies (written out here, not
derived from relay.access.tokens)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from relay.access.tokens import DIRECT_REDIS, generate
from relay.admin import app as admin_app
from relay.store.tokens import TokenStore
from tests.admin.conftest import Api
from tests.integration.helpers import run_async, simple_flag, storage_for

PROD = "/api/v1/environments/prod"
MERGE = {"Content-Type": "application/merge-patch+json"}
_fresh = count()


@dataclass(frozen=True)
class Who:
    role: str | None  # None: no live token at all
    envs: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    state: str = "live"  # live, expired, revoked, or how the Authorization header is malformed (MALFORMED)


WHO = {
    "reader-all": Who("reader"),
    "reader-prod": Who("reader", ("prod",)),
    "reader-staging": Who("reader", ("staging",)),
    "writer-all": Who("writer"),
    "writer-prod-checkout": Who("writer", ("prod",), ("checkout-*",)),
    "writer-prod-other": Who("writer", ("prod",), ("other-*",)),
    "admin-all": Who("admin"),
    "admin-staging": Who("admin", ("staging",)),
    "admin-expired": Who("admin", state="expired"),
    "admin-revoked": Who("admin", state="revoked"),
    "malformed": Who(None, state="malformed"),
    "malformed-prefix": Who(None, state="prefix"),
    "malformed-checksum": Who(None, state="checksum"),
    "malformed-truncated": Who(None, state="truncated"),
    "malformed-absent": Who(None, state="absent"),
    "malformed-scheme": Who(None, state="scheme"),
}
_GOOD = generate()  # well formed, never issued
MALFORMED = {  # the Authorization header for each malformed state (None: no header at all)
    "malformed": "Bearer relay_pat_not-a-token",
    "prefix": "Bearer " + _GOOD.replace("relay_pat_", "relay_pak_"),
    "checksum": "Bearer " + _GOOD[:-1] + ("0" if _GOOD[-1] != "0" else "1"),
    "truncated": "Bearer " + _GOOD[:-3],
    "absent": None,
    "scheme": "Basic " + _GOOD,
}
RANK = {"reader": 1, "writer": 2, "admin": 3}


Setup = Callable[[Api, str], dict[str, str]]  # (api, a fresh name) -> the path's other placeholders, made as root


def _flag_to_delete(api: Api, fresh: str) -> dict[str, str]:
    r = api.call("PUT", f"{PROD}/flags/checkout-{fresh}", api.root, json=simple_flag(f"checkout-{fresh}"))
    assert r.status_code == 200, r.text
    return {}


def _segment_to_delete(api: Api, fresh: str) -> dict[str, str]:
    assert api.call("PUT", f"{PROD}/segments/{fresh}", api.root, json={"included": ["a"]}).status_code == 200
    return {}


def _env_to_delete(api: Api, fresh: str) -> dict[str, str]:
    assert api.call("POST", f"/api/v1/environments/{fresh}", api.root).status_code == 201
    return {}


def _entry_to_revert(api: Api, fresh: str) -> dict[str, str]:
    _flag_to_delete(api, fresh)
    entries = api.call("GET", f"{PROD}/audit?limit=1", api.root).json()["entries"]
    assert entries[0]["key"] == f"checkout-{fresh}", entries
    return {"entry": entries[0]["id"]}


def _token_to_manage(api: Api, fresh: str) -> dict[str, str]:
    # Expiring before every matrix token: rotating keeps the expiry, and no token may grant a later one.
    body = {"name": fresh, "role": "reader", "envs": ["prod"], "expires": "1h"}
    r = api.call("POST", "/api/v1/tokens", api.root, json=body)
    assert r.status_code == 201, r.text
    return {"id": r.json()["id"]}


def _route_table() -> list[tuple[str, str, str, dict[str, Any], int, Any, Setup | None]]:
    """(operationId, method, path, request options, success status, rule(who) -> allowed, set-up), the rules as
    documented; `{fresh}` in a path is a new name each call, other placeholders come from the set-up."""

    def reads(w: Who) -> bool:
        return not w.envs or "prod" in w.envs

    def writes_flag(w: Who) -> bool:
        return RANK[w.role or "reader"] >= 2 and reads(w) and (not w.flags or "checkout-*" in w.flags)

    def writes_segment(w: Who) -> bool:
        return RANK[w.role or "reader"] >= 2 and reads(w) and not w.flags

    def manages_prod_tokens(w: Who) -> bool:  # someone else's token, limited to prod: an admin reaching prod
        return w.role == "admin" and reads(w)

    def anyone(w: Who) -> bool:
        return True

    new_token = {"json": {"name": "m", "role": "reader", "envs": ["prod"], "expires": "1h"}}
    checkout = simple_flag("checkout-put")
    return [
        ("listEnvironments", "GET", "/api/v1/environments", {}, 200, anyone, None),
        ("getEnvironment", "GET", PROD, {}, 200, reads, None),
        ("createEnvironment", "POST", "/api/v1/environments/{fresh}", {}, 201,
         lambda w: w.role == "admin" and not w.envs, None),
        ("deleteEnvironment", "DELETE", "/api/v1/environments/{fresh}?confirm={fresh}", {}, 200,
         lambda w: w.role == "admin" and not w.envs, _env_to_delete),
        ("listFlags", "GET", f"{PROD}/flags", {}, 200, reads, None),
        ("getFlag", "GET", f"{PROD}/flags/checkout-kill-switch", {}, 200, reads, None),
        ("putFlag", "PUT", f"{PROD}/flags/checkout-put", {"json": checkout}, 200, writes_flag, None),
        ("patchFlag", "PATCH", f"{PROD}/flags/checkout-kill-switch", {"headers": MERGE, "json": {}}, 200,
         writes_flag, None),
        ("deleteFlag", "DELETE", f"{PROD}/flags/checkout-{{fresh}}", {}, 200, writes_flag, _flag_to_delete),
        ("listSegments", "GET", f"{PROD}/segments", {}, 200, reads, None),
        ("putSegment", "PUT", f"{PROD}/segments/matrix", {"json": {"included": ["a"]}}, 200, writes_segment, None),
        ("getSegment", "GET", f"{PROD}/segments/{{fresh}}", {}, 200, reads, _segment_to_delete),
        ("patchSegment", "PATCH", f"{PROD}/segments/{{fresh}}", {"headers": MERGE, "json": {}}, 200,
         writes_segment, _segment_to_delete),
        ("deleteSegment", "DELETE", f"{PROD}/segments/{{fresh}}", {}, 200, writes_segment, _segment_to_delete),
        ("importItems", "POST", f"{PROD}/import?dry_run=true",
         {"json": {"flags": {"checkout-x": simple_flag("checkout-x")}}}, 200, writes_flag, None),
        ("exportItems", "GET", f"{PROD}/export", {}, 200, reads, None),
        ("listAudit", "GET", f"{PROD}/audit?limit=1", {}, 200, reads, None),
        ("revertAuditEntry", "POST", f"{PROD}/audit/{{entry}}/revert", {}, 200, writes_flag, _entry_to_revert),
        ("listTokens", "GET", "/api/v1/tokens", {}, 200, anyone, None),
        ("createToken", "POST", "/api/v1/tokens", new_token, 201, lambda w: w.role == "admin" and reads(w), None),
        ("revokeToken", "DELETE", "/api/v1/tokens/{id}", {}, 200, manages_prod_tokens, _token_to_manage),
        ("rotateToken", "POST", "/api/v1/tokens/{id}/rotate", {"json": {}}, 200, manages_prod_tokens,
         _token_to_manage),
        # No credential at all (docs/security.md, operator endpoints): the same answer to everyone.
        ("adminOpenapi", "GET", "/openapi.json", {}, 200, anyone, None),
        ("adminStatus", "GET", "/status", {}, 200, anyone, None),
        ("adminMetrics", "GET", "/metrics", {}, 200, anyone, None),
    ]  # fmt: skip


PUBLIC = {"adminOpenapi", "adminStatus", "adminMetrics"}


def test_the_table_covers_every_documented_operation() -> None:
    spec = json.loads((Path(admin_app.__file__).parent / "openapi.json").read_text())
    documented = {
        (method.upper(), path, op["operationId"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and "operationId" in op
    }
    table = _route_table()
    assert sorted(row[0] for row in table) == sorted({op for _, _, op in documented}), "one row per operation"
    by_id = {op: (method, path) for method, path, op in documented}
    for op, method, path, *_ in table:  # each row calls its operation: its method, a path its template matches
        template = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", by_id[op][1]))
        concrete = path.split("?")[0].format(fresh="x", entry="e", id="t")
        assert method == by_id[op][0] and re.fullmatch(template, concrete), (op, method, path)
    public = {op for _, path, op in documented if spec["paths"][path].get("get", {}).get("security") == []}
    assert public == PUBLIC


def _token(api: Api, who: Who) -> str | None:
    """The token to send (None: send `MALFORMED[who.state]` as the header instead)."""
    if who.state in MALFORMED:
        return None
    if who.state == "expired":  # issued 31 days ago for 30
        ago = TokenStore(storage_for(api.redis.url), clock=lambda: time.time() - 31 * 86_400)

        async def old() -> str:
            return (await ago.issue("old", "admin", (), (), "30d", by=f"{DIRECT_REDIS}tests"))[0]

        return run_async(old())
    token = api.token(who.role or "reader", envs=who.envs, flags=who.flags, name="matrix-user")
    if who.state == "revoked":
        mine = [t for t in api.call("GET", "/api/v1/tokens", api.root).json()["items"] if t["name"] == "matrix-user"]
        assert api.call("DELETE", f"/api/v1/tokens/{mine[0]['id']}", api.root).status_code == 200
    return token


@pytest.mark.parametrize("name", sorted(WHO))
def test_every_route_answers_as_specified(api: Api, name: str) -> None:
    who = WHO[name]
    token = _token(api, who)
    header = {} if token is not None or MALFORMED[who.state] is None else {"Authorization": MALFORMED[who.state]}
    wrong, failed, table = [], 0, _route_table()
    # Every set-up first: once this address has failed to authenticate 10 times, even root's calls get 429.
    names = [f"matrix-{next(_fresh)}" for _ in table]
    made = [setup(api, fresh) if setup else {} for fresh, (*_, setup) in zip(names, table, strict=True)]
    for fresh, more, (op, method, path, options, success, allowed, _) in zip(names, made, table, strict=True):
        sent = {**options, "headers": {**options.get("headers", {}), **header}}
        r = api.call(method, path.format(fresh=fresh, **more), token, **sent)
        if op in PUBLIC:
            want = success
        elif who.state != "live":  # each request a failed authentication; the 11th from this address: 429
            want, failed = (401 if failed < 10 else 429), failed + 1
        else:
            want = success if allowed(who) else 403
        if r.status_code != want:
            wrong.append(f"{op} {method} {path}: {r.status_code} (want {want}) {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
