"""What every CLI command shares: settings, a Redis connection (embedded or not), errors, options."""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)

from relay.access.sealing import Sealer
from relay.cli.api import ApiClient, ApiWritePath, from_environment
from relay.cli.demo import seed_demo
from relay.config import Settings, load_settings, redact_url
from relay.errors import ConflictError, NotFoundError, RelayError, UnavailableError, ValidationError
from relay.store.embedded import EmbeddedRedis
from relay.store.storage import RedisError, Storage, connect, unavailable
from relay.store.writes import WritePath
from relay.wire import codec

T = TypeVar("T")

# Exit codes, documented in the README.
EXIT_CODES: dict[type[RelayError], int] = {
    ValidationError: 2,
    NotFoundError: 3,
    ConflictError: 4,
    UnavailableError: 5,
}
EXIT_CANNOT_LISTEN = 7  # relay serve: its address is in use, or not ours to take (6 is relay loadtest's)


def settings(ctx: click.Context | None = None) -> Settings:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        try:
            root.obj = load_settings(config_file=root.params.get("config_file"))
        except ValidationError as e:
            fail(e)
    return root.obj  # type: ignore[no-any-return]


def fail(error: RelayError | str, code: int = 1) -> None:
    if isinstance(error, RelayError):
        code = next((c for cls, c in EXIT_CODES.items() if isinstance(error, cls)), 1)
    click.echo(f"error: {error}", err=True)
    sys.exit(code)


def redis_failure(error: Exception, url: str, s: Settings) -> UnavailableError:
    """A Redis failure as the condition it is (out of memory, read-only replica, password, ACL, or
    unreachable), each with its own message and the URL's password masked; all exit with code 5.
    Lua scripts report a refused command inside their own error ("… -OOM command not allowed"),
    so the text is read as well as the class."""
    where, said = redact_url(url), str(error)
    if isinstance(error, OutOfMemoryError) or "-OOM " in said:
        return UnavailableError(
            f"Redis at {where} is out of memory: it is at its maxmemory with a policy that evicts nothing, "
            f"so it refuses writes. Free memory or raise maxmemory (docs/deployment.md). Redis said: {said}"
        )
    if isinstance(error, ReadOnlyError) or "-READONLY " in said:
        return UnavailableError(
            f"Redis at {where} is a read-only replica: writes go to the primary. Point RELAY_REDIS_URL at "
            f"the primary, or at Sentinel (redis+sentinel://…/master). Redis said: {said}"
        )
    if isinstance(error, AuthenticationError):
        if s.redis_password or urlsplit(url).password:
            return UnavailableError(
                f"Redis at {where} refused the password (wrong password, or wrong user): check "
                f"RELAY_REDIS_PASSWORD or the URL's. Redis said: {said}"
            )
        return UnavailableError(
            f"Redis at {where} requires a password and none was given: set RELAY_REDIS_PASSWORD or put it "
            f"in the URL (redis://:PASSWORD@host:6379/0). Redis said: {said}"
        )
    if isinstance(error, NoPermissionError):
        return UnavailableError(f"Redis at {where} does not allow this user that command (its ACL): {said}")
    if isinstance(error, ResponseError):
        return UnavailableError(f"Redis at {where} answered with an error: {said}")
    return unavailable(error, url)  # "Redis unreachable at …": refused, timed out, no such host


def redis_url(s: Settings) -> str:
    return s.redis_url or EmbeddedRedis(s.data_dir).url


@asynccontextmanager
async def open_storage(s: Settings, *, seed: bool = True) -> AsyncIterator[Storage]:
    """Storage on the configured Redis, starting the embedded one (and its demo) when none is set."""
    if s.embedded:
        embedded = EmbeddedRedis(s.data_dir)
        embedded.start()
    url = redis_url(s)
    storage = Storage(connect(s, url), s.redis_prefix, audit_max=s.audit_max_entries)
    try:
        try:
            await storage.ping()
        except (RedisError, OSError) as e:
            raise redis_failure(e, url, s) from None
        if s.embedded and seed:
            secrets = await seed_demo(WritePath(storage, actor="relay"), s.data_dir)
            if secrets:
                click.echo(
                    f"Created the demo environment; its keys are in {s.data_dir}/demo-credentials.json:\n"
                    + codec.dumps(secrets, pretty=True).decode(),
                    err=True,
                )
        yield storage
    except (RedisError, OSError) as e:
        raise redis_failure(e, url, s) from None
    finally:
        await storage.close()


def run(coro_fn: Callable[[Storage], Awaitable[T]], *, seed: bool = True) -> T:
    """Run one async operation against Redis, turning relay's errors into messages and exit codes. With
    RELAY_API_URL and RELAY_TOKEN set, `coro_fn` gets the admin API's client instead (see `write_path`)."""
    s = settings()
    client = from_environment()

    async def main() -> T:
        if client is not None:
            return await coro_fn(client)  # type: ignore[arg-type]
        async with open_storage(s, seed=seed) as storage:
            return await coro_fn(storage)

    try:
        return asyncio.run(main())
    except RelayError as e:
        if s.embedded and isinstance(e, NotFoundError) and str(e).startswith("unknown environment"):
            # Which Redis that was: a different RELAY_HOME, or a missing RELAY_REDIS_URL, is the usual cause.
            click.echo(
                f"note: this is the embedded Redis in {s.data_dir} (RELAY_HOME); "
                "set RELAY_REDIS_URL to use another Redis",
                err=True,
            )
        fail(e)
    except (RedisError, OSError) as e:
        fail(redis_failure(e, redis_url(s), s))
    raise AssertionError("unreachable")


def write_path(target: Storage | ApiClient, actor: str, *, sealer: Sealer | None = None) -> WritePath:
    """The write path acting for `actor` on Redis directly — audited as such, with the OS user — or, given
    the API's client (`run`), its stand-in, which the API audits with the token's owner."""
    if isinstance(target, ApiClient):
        return ApiWritePath(target)  # type: ignore[return-value]
    return WritePath(
        target,
        actor=actor,
        sealer=sealer,
        audit_fields={"via": "direct-redis", "os_user": os_user()},
        max_item_bytes=settings().max_item_bytes,
        strict=settings().strict_writes,
    )


def os_user() -> str:
    """Who is logged in, whatever --actor or $RELAY_ACTOR claim."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        return "unknown"


def _no_actor_through_the_api(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if ctx.get_parameter_source("actor") is click.core.ParameterSource.COMMANDLINE and from_environment():
        raise click.UsageError(
            "--actor is refused with RELAY_API_URL and RELAY_TOKEN set: the API audits the token's owner"
        )
    return value


def default_actor() -> str:
    try:
        return os.environ.get("RELAY_ACTOR") or getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        return "unknown"


def echo_json(value: Any) -> None:
    click.echo(codec.dumps(value, pretty=True).decode())


_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> int:
    """Epoch ms for `2026-11-26T10:00:00Z`, `2026-11-26`, or a relative `30m`, `2h`, `7d`."""
    m = _RELATIVE.match(text)
    if m:
        return int((time.time() - int(m.group(1)) * _UNIT_SECONDS[m.group(2)]) * 1000)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a time (2026-11-26T10:00:00Z) nor an age (2h, 7d)") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return int(dt.timestamp() * 1000)


def parse_duration(text: str) -> float:
    m = _RELATIVE.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration such as 30s, 15m, 1h or 7d")
    return float(int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


env_option = click.option(
    "--env", "env", envvar="RELAY_ENV", required=True, metavar="ENV", help="Environment key (default: $RELAY_ENV)."
)
actor_option = click.option(
    "--actor",
    default=default_actor,
    show_default="$RELAY_ACTOR, else your OS user",
    callback=_no_actor_through_the_api,
    help="Who is making the change (on Redis directly; through the API, the token's owner).",
)
comment_option = click.option("--comment", default="", help="Why: stored in the audit log.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
