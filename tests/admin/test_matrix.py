"""The token matrix: role × environment scope × flag globs × expired × revoked × malformed, over the admin
routes, each answering exactly 200/201, 401 or 403 as docs/security.md specifies (written out here, not
derived from relay.access.tokens)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest

from relay.access.tokens import DIRECT_REDIS
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
    state: str = "live"  # live, expired, revoked, malformed


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
}
RANK = {"reader": 1, "writer": 2, "admin": 3}


def _route_table() -> list[tuple[str, str, dict[str, Any], int, Any]]:
    """(method, path, request options, success status, rule(who) -> allowed), the rules as documented."""

    def reads(w: Who) -> bool:
        return not w.envs or "prod" in w.envs

    def writes_flag(w: Who) -> bool:
        return RANK[w.role or "reader"] >= 2 and reads(w) and (not w.flags or "checkout-*" in w.flags)

    def writes_segment(w: Who) -> bool:
        return RANK[w.role or "reader"] >= 2 and reads(w) and not w.flags

    def anyone(w: Who) -> bool:
        return True

    new_token = {"json": {"name": "m", "role": "reader", "envs": ["prod"], "expires": "1h"}}
    return [
        ("GET", "/api/v1/environments", {}, 200, anyone),
        ("GET", PROD, {}, 200, reads),
        ("POST", "/api/v1/environments/{fresh}", {}, 201, lambda w: w.role == "admin" and not w.envs),
        ("GET", f"{PROD}/flags", {}, 200, reads),
        ("GET", f"{PROD}/flags/checkout-kill-switch", {}, 200, reads),
        ("PATCH", f"{PROD}/flags/checkout-kill-switch", {"headers": MERGE, "json": {}}, 200, writes_flag),
        ("PUT", f"{PROD}/segments/matrix", {"json": {"included": ["a"]}}, 200, writes_segment),
        (
            "POST",
            f"{PROD}/import?dry_run=true",
            {"json": {"flags": {"checkout-x": simple_flag("checkout-x")}}},
            200,
            writes_flag,
        ),
        ("GET", f"{PROD}/export", {}, 200, reads),
        ("GET", f"{PROD}/audit?limit=1", {}, 200, reads),
        ("GET", "/api/v1/tokens", {}, 200, anyone),
        ("POST", "/api/v1/tokens", new_token, 201, lambda w: w.role == "admin" and reads(w)),
    ]


def _token(api: Api, who: Who) -> str:
    if who.state == "malformed":
        return "relay_pat_not-a-token"
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
    wrong = []
    for i, (method, path, options, success, allowed) in enumerate(_route_table()):
        r = api.call(method, path.format(fresh=f"matrix-{next(_fresh)}"), token, **options)
        # Not live: each request a failed authentication, and the 11th from this address is refused 429.
        want = (401 if i < 10 else 429) if who.state != "live" else success if allowed(who) else 403
        if r.status_code != want:
            wrong.append(f"{method} {path}: {r.status_code} (want {want}) {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
