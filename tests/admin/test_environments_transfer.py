"""Environments, import (dry run, replace, shape, scope refused whole) and export through /api/v1."""

from __future__ import annotations

from typing import Any

from tests.admin.conftest import Api
from tests.integration.helpers import simple_flag

PROD = "/api/v1/environments/prod"


def test_environments_list_get_create(api: Api) -> None:
    listed = api.call("GET", "/api/v1/environments", api.root).json()["items"]
    assert [e["key"] for e in listed] == ["prod", "staging"]
    assert set(listed[0]) == {"key", "name", "created", "clientSideId", "sdkKeys", "mobileKeys", "secureMode"}
    scoped = api.token("reader", envs=("staging",))
    assert [e["key"] for e in api.call("GET", "/api/v1/environments", scoped).json()["items"]] == ["staging"]
    assert api.call("GET", PROD, scoped).status_code == 403
    assert api.call("GET", PROD, api.root).json()["key"] == "prod"
    assert api.call("GET", "/api/v1/environments/nowhere", api.root).status_code == 404

    created = api.call("POST", "/api/v1/environments/qa", api.root, json={"name": "QA"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "QA" and body["sdkKey"].startswith("sdk-") and body["mobileKey"].startswith("mob-")
    assert body["sdkKey"] not in api.call("GET", "/api/v1/environments/qa", api.root).text
    assert api.call("POST", "/api/v1/environments/qa", api.root).status_code == 409
    reserved = api.call("POST", "/api/v1/environments/tokens", api.root)
    assert reserved.status_code == 422 and reserved.json()["path"] == "env"
    assert api.call("POST", "/api/v1/environments/bad%20key", api.root).status_code == 422
    assert api.call("POST", "/api/v1/environments/x", api.root, json={"secureMode": "yes"}).status_code == 422
    for token in (api.token("writer"), api.token("admin", envs=("prod",))):  # only an all-environment admin
        assert api.call("POST", "/api/v1/environments/other", token).status_code == 403


def test_environment_delete_needs_its_name_as_confirmation(api: Api) -> None:
    refused = api.call("DELETE", PROD, api.root)
    assert refused.status_code == 422 and refused.json()["path"] == "confirm"
    assert api.call("DELETE", f"{PROD}?confirm=staging", api.root).status_code == 422
    assert api.call("DELETE", "/api/v1/environments/nowhere?confirm=nowhere", api.root).status_code == 404
    assert api.call("DELETE", f"{PROD}?confirm=prod", api.token("writer")).status_code == 403
    for spelling in ("1", "True"):  # read as every write reads ?dry_run: a dry run, or refused; never a delete
        assert api.call("DELETE", f"{PROD}?confirm=prod&dry_run={spelling}", api.root).status_code in (200, 422)
        assert api.call("GET", PROD, api.root).status_code == 200, spelling
    assert api.call("DELETE", f"{PROD}?confirm=prod&dry_run=yes", api.root).status_code == 422
    dry = api.call("DELETE", f"{PROD}?confirm=prod&dry_run=true", api.root)
    assert dry.status_code == 200 and dry.json()["dryRun"] is True and dry.json()["deleted"] is False, dry.text
    assert api.call("GET", PROD, api.root).status_code == 200  # a dry run deletes nothing
    done = api.call("DELETE", f"{PROD}?confirm=prod", api.root)
    assert done.status_code == 200 and done.json()["deleted"] is True, done.text
    assert api.call("GET", PROD, api.root).status_code == 404
    entry = api.call("GET", f"{PROD}/audit", api.root).json()["entries"][0]
    assert entry["action"] == "env-delete" and entry["via"] == "api"  # audited with the token


def _doc(*keys: str, **extra: Any) -> dict[str, Any]:
    return {"flags": {k: simple_flag(k) for k in keys}, **extra}


def test_import_dry_run_then_replace(api: Api) -> None:
    before = api.call("GET", f"{PROD}/export", api.root).json()
    dry = api.call("POST", f"{PROD}/import?replace=true&dry_run=true", api.root, json=_doc("a", "b"))
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["dryRun"] is True and plan["written"] == 0
    assert plan["created"] == [{"kind": "flag", "key": "a"}, {"kind": "flag", "key": "b"}]
    assert {"kind": "flag", "key": "checkout-kill-switch"} in plan["deleted"]
    assert api.call("GET", f"{PROD}/export", api.root).json() == before  # nothing written
    done = api.call("POST", f"{PROD}/import?replace=true", api.root, json=_doc("a", "b", comment="reset"))
    assert done.status_code == 200 and done.json()["dryRun"] is False and done.json()["dataVersion"]
    exported = api.call("GET", f"{PROD}/export", api.root).json()
    assert sorted(exported["flags"]) == ["a", "b"]
    entry = api.call("GET", f"{PROD}/audit", api.root, params={"limit": 1}).json()["entries"][0]
    assert entry["comment"] == "reset" and entry["via"] == "api"
    again = api.call("POST", f"{PROD}/import", api.root, json=_doc("a"))
    assert again.json()["unchanged"] == [{"kind": "flag", "key": "a"}]


def test_import_shapes_are_checked_before_anything(api: Api) -> None:
    for doc, path in [({"flagz": {}}, "flagz"), ({}, "document"), ([], "document"),
                      ({"flags": {"x": {"variations": "no"}}}, "flags.x.variations")]:  # fmt: skip
        r = api.call("POST", f"{PROD}/import?replace=true", api.root, json=doc)
        assert r.status_code == 422 and r.json()["path"] == path, (doc, r.text)
    assert api.call("POST", f"{PROD}/import?replace=maybe", api.root, json=_doc("a")).status_code == 422
    assert "checkout-kill-switch" in api.call("GET", f"{PROD}/export", api.root).json()["flags"]


def test_an_import_touching_anything_outside_the_scope_is_refused_whole(api: Api) -> None:
    writer = api.token("writer", envs=("prod",), flags=("checkout-*",))
    before = api.call("GET", f"{PROD}/export", api.root).json()
    inside = api.call("POST", f"{PROD}/import", writer, json=_doc("checkout-a"))
    assert inside.status_code == 200, inside.text
    mixed = api.call("POST", f"{PROD}/import", writer, json=_doc("checkout-b", "zebra"))
    assert mixed.status_code == 403 and 'flag "zebra"' in mixed.json()["message"]
    replacing = api.call("POST", f"{PROD}/import?replace=true", writer, json=_doc("checkout-a"))
    assert replacing.status_code == 403  # it would delete flags outside checkout-*
    segment = api.call("POST", f"{PROD}/import", writer, json={"segments": {"beta": {"included": ["x"]}}})
    assert segment.status_code == 403 and 'segment "beta"' in segment.json()["message"]
    exported = api.call("GET", f"{PROD}/export", api.root).json()
    assert set(exported["flags"]) == {*before["flags"], "checkout-a"} and "checkout-b" not in exported["flags"]
    assert api.call("POST", f"{PROD}/import", api.token("reader"), json=_doc("x")).status_code == 403
    assert api.call("GET", f"{PROD}/export", api.token("reader", envs=("staging",))).status_code == 403
