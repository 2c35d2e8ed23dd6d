"""The CLI through the admin API: with RELAY_API_URL and RELAY_TOKEN set, `flags`, `segments`, `env`, `audit` and
`tokens` send their reads and writes to /api/v1 (stdlib urllib: no HTTP library at run time) instead of Redis,
and are audited with the token's owner. `ApiWritePath` answers as the write path (relay.store.writes) does,
so each command's code stays the same either way.
"""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from relay.access.environments import Credential, Environment
from relay.errors import (
    ConflictError,
    Forbidden,
    NotFoundError,
    RateLimited,
    RelayError,
    Unauthorized,
    UnavailableError,
    ValidationError,
)
from relay.evaluation import DataWarning
from relay.store.plan import Confirm, EnvironmentPlan, ItemChange, WriteResult
from relay.wire import codec

_ERRORS: dict[int, type[RelayError]] = {401: Unauthorized, 403: Forbidden, 404: NotFoundError, 409: ConflictError}


def from_environment() -> ApiClient | None:
    """The API client when both RELAY_API_URL and RELAY_TOKEN are set, else None (Redis directly)."""
    url, token = os.environ.get("RELAY_API_URL"), os.environ.get("RELAY_TOKEN")
    return ApiClient(url, token) if url and token else None


class ApiClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self._token = token  # sent, never printed: errors name the URL only

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> Any:
        """The answer's JSON, or the RelayError the API answered (412 as a version conflict, as the CLI's exit 4)."""
        query = f"?{urlencode({k: v for k, v in (params or {}).items() if v is not None})}" if params else ""
        data = None if body is None else codec.dumps(body)
        request = urllib.request.Request(f"{self.url}{path}{query}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", media_type)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return codec.loads(response.read() or b"null", what="the API's answer")
        except urllib.error.HTTPError as e:
            raise _error(e.code, e.read(), e.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError) as e:
            raise UnavailableError(f"admin API unreachable at {self.url}: {getattr(e, 'reason', e)}") from None

    async def acall(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        return await asyncio.to_thread(self.call, method, path, body, **options)


def _error(status: int, raw: bytes, retry_after: str | None) -> RelayError:
    try:
        body = codec.loads(raw)
        message, path = str(body.get("message", "")), body.get("path")
    except (ValidationError, AttributeError):
        message, path = raw.decode(errors="replace")[:200], None
    if status == 422:
        return ValidationError(str(path or ""), message)
    if status == 412:
        return ConflictError(message)
    if status == 429:
        return RateLimited(message, int(retry_after or 1))
    cls = _ERRORS.get(status, UnavailableError if status >= 500 else RelayError)
    return cls(f"{message} (HTTP {status})" if cls is RelayError else message)


def _conditional(expected_version: int | None) -> dict[str, str]:
    if expected_version is None:
        return {}
    return {"If-None-Match": "*"} if expected_version == 0 else {"If-Match": f'"{expected_version}"'}


def _changes(answer: dict[str, Any]) -> list[ItemChange]:
    return [ItemChange(c["kind"], c["key"], c["action"], c["before"], c["after"]) for c in answer.get("changes", [])]


def _warnings(answer: dict[str, Any]) -> list[DataWarning]:
    return [DataWarning(w["path"], w["message"]) for w in answer.get("warnings", [])]


def _written(answer: dict[str, Any]) -> WriteResult:
    """The API's answer to an item write as the write path's own result: what was stored, the plan and
    the warnings."""
    dry_run = bool(answer.get("dryRun"))
    versions = [answer["dataVersion"]] if answer.get("dataVersion") is not None else []
    items = [answer["item"]] if answer.get("item") and versions else []
    return WriteResult(items, versions, _changes(answer), dry_run, warnings=_warnings(answer))


def _dry(dry_run: bool, strict: bool | None = None) -> dict[str, str]:
    return {**({"dry_run": "true"} if dry_run else {}), **({} if strict is None else {"strict": str(strict).lower()})}


def _env_plan(answer: dict[str, Any]) -> EnvironmentPlan:
    """The API's answer to an environment DELETE as the write path's plan."""
    return EnvironmentPlan(
        answer["env"], answer["action"], bool(answer["dry_run"]), int(answer["flags"]), int(answer["segments"]),
        int(answer["data_version"]), answer.get("lost_data") or "", tuple(answer.get("keys", ())),
    )  # fmt: skip


def _storage_entry(e: dict[str, Any]) -> dict[str, str]:
    """An API audit entry in the write script's own shape, as `relay audit` prints those."""
    fields = {"via": e.get("via"), "token": e.get("token"), "os_user": e.get("osUser")}
    out = {
        "id": e["id"],
        "time": str(e["time"]),
        "actor": e["actor"],
        "action": e["action"],
        "kind": e["kind"],
        "key": e["key"],
        "version": "" if e.get("version") is None else str(e["version"]),
        "comment": e.get("comment", ""),
        **{k: v for k, v in fields.items() if v},
    }
    for side in ("before", "after"):
        out[side] = "" if e.get(side) is None else codec.dumps(e[side]).decode()
    return out


class ApiWritePath:
    """relay.store.writes.WritePath's reads and writes, as the CLI calls them, through the API."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _env(self, env: str) -> str:
        return f"/api/v1/environments/{quote(env, safe='')}"

    def _item(self, env: str, kind: str, key: str) -> str:
        return f"{self._env(env)}/{kind}s/{quote(key, safe='')}"

    # reads --------------------------------------------------------------------------------------
    async def list_items(self, env: str, kind: str) -> dict[str, dict[str, Any]]:
        items = (await self.client.acall("GET", f"{self._env(env)}/{kind}s"))["items"]
        return {i["key"]: i for i in items}

    async def get_item(self, env: str, kind: str, key: str) -> dict[str, Any]:
        return await self.client.acall("GET", self._item(env, kind, key))  # type: ignore[no-any-return]

    async def export(self, env: str) -> dict[str, Any]:
        return await self.client.acall("GET", f"{self._env(env)}/export")  # type: ignore[no-any-return]

    async def audit(
        self, env: str, *, key: str | None = None, since_ms: int | None = None, limit: int = 100
    ) -> list[dict[str, str]]:
        queries = [{"flag": key}, {"segment": key}] if key is not None else [{}]
        entries: dict[str, dict[str, Any]] = {}
        for q in queries:
            page = await self.client.acall(
                "GET", f"{self._env(env)}/audit", params={**q, "since": since_ms, "limit": min(limit, 1000)}
            )
            entries.update({e["id"]: e for e in page["entries"]})
        newest = sorted(entries.values(), key=lambda e: tuple(int(p) for p in e["id"].split("-")), reverse=True)
        return [_storage_entry(e) for e in newest[:limit]]

    async def list_environments(self) -> list[Environment]:
        """As Environment values; their credentials are placeholders, one per live key (the API shows no hash)."""
        out = []
        for e in (await self.client.acall("GET", "/api/v1/environments"))["items"]:
            out.append(
                Environment(
                    e["key"],
                    e["name"],
                    e["created"],
                    e["clientSideId"],
                    sdk_keys=(Credential(""),) * e["sdkKeys"],
                    mobile_keys=(Credential(""),) * e["mobileKeys"],
                    secure_mode=e["secureMode"],
                )
            )
        return out

    # writes -------------------------------------------------------------------------------------
    async def put_item(
        self,
        env: str,
        kind: str,
        data: Any,
        *,
        key: str | None = None,
        expected_version: int | None = None,
        comment: str = "",
        dry_run: bool = False,
        strict: bool | None = None,
    ) -> WriteResult:
        key = key or (data.get("key") if isinstance(data, dict) else None)
        if not isinstance(key, str):
            raise ValidationError(f"{kind}.key", "is required")
        headers = {**_conditional(expected_version), "X-Relay-Comment": comment}
        path = self._item(env, kind, key)
        return _written(await self.client.acall("PUT", path, data, headers=headers, params=_dry(dry_run, strict)))

    async def toggle(
        self,
        env: str,
        key: str,
        on: bool,
        *,
        expected_version: int | None = None,
        comment: str = "",
        dry_run: bool = False,
    ) -> WriteResult:
        headers = {**_conditional(expected_version), "X-Relay-Comment": comment}
        answer = await self.client.acall(
            "PATCH",
            self._item(env, "flag", key),
            {"on": on},
            headers=headers,
            media_type="application/merge-patch+json",
            params=_dry(dry_run),
        )
        return _written(answer)

    async def delete_item(
        self,
        env: str,
        kind: str,
        key: str,
        *,
        expected_version: int | None = None,
        comment: str = "",
        dry_run: bool = False,
    ) -> WriteResult:
        headers = {**_conditional(expected_version), "X-Relay-Comment": comment}
        path = self._item(env, kind, key)
        return _written(await self.client.acall("DELETE", path, headers=headers, params=_dry(dry_run)))

    async def import_items(
        self, env: str, doc: Any, *, replace_all: bool = False, confirm: Confirm | None = None,
        dry_run: bool = False, comment: str = "", strict: bool | None = None,
    ) -> WriteResult:  # fmt: skip
        """As the write path's: a replace that deletes is first planned (a dry run on the API) and
        asked about with `confirm`, then sent."""
        path, headers = f"{self._env(env)}/import", {"X-Relay-Comment": comment}

        async def send(dry: bool) -> WriteResult:
            params = {"replace": "true" if replace_all else "false", **_dry(dry, strict)}
            answer = await self.client.acall("POST", path, doc, params=params, headers=headers)
            versions = [answer["dataVersion"]] if answer.get("dataVersion") is not None else []
            written = [c.after for c in _changes(answer) if c.action != "unchanged"] if versions else []
            return WriteResult(written, versions, _changes(answer), dry, warnings=_warnings(answer))

        if dry_run or not replace_all:
            return await send(dry_run)
        plan = await send(True)
        if plan.deletions and (confirm is None or not confirm(plan)):
            raise ValidationError(
                "", f"replacing the items of {env} would delete {len(plan.deletions)} items, which was not "
                "confirmed; nothing written"
            )  # fmt: skip
        return await send(False)

    async def revert(self, env: str, entry_id: str, *, comment: str = "") -> WriteResult:
        path = f"{self._env(env)}/audit/{quote(entry_id, safe='')}/revert"
        return _written(await self.client.acall("POST", path, {"comment": comment} if comment else None))

    async def create_environment(
        self,
        key: str,
        name: str | None = None,
        *,
        secure_mode: bool = False,
        sdk_key: str | None = None,
        mobile_key: str | None = None,
        client_side_id: str | None = None,
    ) -> tuple[None, dict[str, str]]:
        given = {"sdkKey": sdk_key, "mobileKey": mobile_key, "clientSideId": client_side_id}
        body = {"secureMode": secure_mode, **({"name": name} if name else {})}
        body |= {field: value for field, value in given.items() if value is not None}
        e = await self.client.acall("POST", self._env(key), body)
        return None, {
            "key": e["key"],
            "sdk_key": e["sdkKey"],
            "client_side_id": e["clientSideId"],
            "mobile_key": e["mobileKey"],
        }

    async def delete_environment(
        self, env: str, *, confirm: Confirm, dry_run: bool = False, comment: str = ""
    ) -> EnvironmentPlan:
        """As the write path's: the plan (a dry run on the API) first, `confirm` asked with it, then the delete."""
        headers = {"X-Relay-Comment": comment} if comment else {}
        planned = _env_plan(
            await self.client.acall("DELETE", self._env(env), params={"confirm": env, "dry_run": "true"})
        )
        if dry_run:
            return planned
        if not confirm(planned):
            raise ValidationError(
                "", f'deleting environment "{env}" ({planned.flags} flags, {planned.segments} segments) was not '
                "confirmed; nothing deleted"
            )  # fmt: skip
        return _env_plan(await self.client.acall("DELETE", self._env(env), params={"confirm": env}, headers=headers))

    def __getattr__(self, name: str) -> Any:
        """What the API does not do yet (rotating keys, secure mode, accepting Redis's data): said plainly."""
        if name.startswith("_"):
            raise AttributeError(name)

        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise ValidationError(
                "RELAY_API_URL",
                f"{name.replace('_', ' ')} is not in the admin API yet: unset "
                "RELAY_API_URL and RELAY_TOKEN to do it on Redis directly",
            )

        return unavailable
