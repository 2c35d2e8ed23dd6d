"""`relay config show`, `relay serve`, `relay redis …`: running relay."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from typing import Any

import click
import uvicorn

from relay.app import bounded_protocol, create_admin, create_app
from relay.cli.common import EXIT_CANNOT_LISTEN, echo_json, fail, open_storage, redis_url, settings
from relay.cli.demo import demo_banner
from relay.cli.serving import WithAdmin
from relay.config import Settings, admin_address, redact_url
from relay.errors import RelayError
from relay.runtime import logs
from relay.store.embedded import EmbeddedRedis
from relay.store.writes import WritePath


@click.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
def show() -> None:
    """The effective settings (file, then RELAY_* variables), secrets masked."""
    echo_json(settings().masked())


@click.group("redis")
def redis_group() -> None:
    """The embedded redis-server (used when RELAY_REDIS_URL is unset)."""


@redis_group.command("status")
def redis_status() -> None:
    """Whether the embedded redis-server is running, and where its data lives ($RELAY_HOME)."""
    s = settings()
    e = EmbeddedRedis(s.data_dir)
    click.echo(f"embedded redis-server in {e.dir}: {'running' if e.running() else 'stopped'}")


@redis_group.command("stop")
def redis_stop() -> None:
    """Shut the embedded redis-server down cleanly (its data is saved)."""
    s = settings()
    stopped = EmbeddedRedis(s.data_dir).stop()
    click.echo("stopped" if stopped else "was not running")


@click.command("serve")
@click.option("--host", help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=int, help="Port (default from settings: 8030).")
@click.option("--workers", type=int, help="Worker processes, each with its own Redis subscriber and rulesets.")
@click.option(
    "--admin-port", type=int, help="Admin API port, on admin_listen's host (default 127.0.0.1:8031; 0: none)."
)
def serve(host: str | None, port: int | None, workers: int | None, admin_port: int | None) -> None:
    """Run a relay node: the SDK-facing HTTP server, kept current from Redis.

    With the embedded Redis, it is started if needed (with the demo environment on first start)
    and stopped again when the node exits, if this command started it. SIGTERM drains: stop
    accepting, end streams, exit.
    """
    s = settings().replace(host=host, port=port, workers=workers)
    if admin_port is not None:
        admin_host = admin_address(s.admin_listen)[0] if s.admin_listen else "127.0.0.1"
        s = s.replace(admin_listen=f"{admin_host}:{admin_port}" if admin_port else "")
    logs.configure(s.log_level, s.log_format)
    log = logging.getLogger("relay.serve")
    _check_listen(s.host, s.port)  # before any Redis is started for it
    if s.admin_listen and s.workers == 1:  # the admin listener's too
        _check_listen(*admin_address(s.admin_listen), hint="--admin-port or RELAY_ADMIN_LISTEN")
    embedded = EmbeddedRedis(s.data_dir) if s.embedded else None
    started = embedded.start() if embedded else False
    url = redis_url(s)
    # uvicorn drains on SIGTERM/SIGINT and then re-raises the signal; make that a clean exit, so
    # the embedded Redis is stopped below and process managers see status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        banner = asyncio.run(_check_and_seed(s))
        log.info("relay listening on http://%s:%d (Redis %s)", s.host, s.port, redact_url(url))
        if banner:
            click.echo(banner, err=True)
        options = {
            "host": s.host,
            "port": s.port,
            "log_config": None,
            "access_log": s.access_log,
            # X-Forwarded-For/-Proto matter only to the access log's client address: read them only
            # then (uvicorn's middleware for them was ~2% of an evalx request).
            "proxy_headers": s.access_log,
            "loop": "uvloop",
            "http": bounded_protocol(s),
            "timeout_keep_alive": s.keepalive_timeout,
            "timeout_graceful_shutdown": 10,  # a backstop: streams are ended at the signal already
        }
        if s.workers > 1:
            if s.admin_listen:
                log.warning("no admin listener with --workers above 1: run one `relay serve --workers 1` for it")
            os.environ["RELAY_REDIS_URL"] = url  # the workers read their settings from the environment
            uvicorn.run("relay.app:app_from_environment", factory=True, workers=s.workers, **options)
        else:
            _serve_one(s, url, options, log)
    except SystemExit as e:
        if e.code == 3:  # uvicorn's "startup failed" (it logged why), which is relay's "not found"
            fail(f"relay could not start serving on {s.host}:{s.port} (see the log above)", EXIT_CANNOT_LISTEN)
        raise
    except RelayError as e:
        fail(e)
    except KeyboardInterrupt:
        pass
    finally:
        if started and embedded is not None:
            embedded.stop()
            log.info("stopped the embedded redis-server (data kept in %s)", embedded.dir)


def _serve_one(s: Settings, url: str, options: dict[str, Any], log: logging.Logger) -> None:
    """One process: the SDK server, and the admin listener beside it in the same event loop (unless disabled)."""
    app = create_app(s, redis_url=url)
    admin = create_admin(s, app, redis_url=url)
    if admin is None:
        uvicorn.run(app, **options)
        return
    admin_host, admin_port = admin_address(s.admin_listen)
    log.info("admin API listening on http://%s:%d", admin_host, admin_port)
    admin_options = {**options, "host": admin_host, "port": admin_port, "proxy_headers": False}
    server = WithAdmin(uvicorn.Config(app, **options), uvicorn.Config(admin, **admin_options))
    server.run()
    if not server.started:
        sys.exit(3)  # as uvicorn.run: the server failed to start


def _check_listen(host: str, port: int, hint: str = "--port or RELAY_PORT") -> None:
    """Fail at once, with its own exit code, when the address cannot be listened on: uvicorn would
    exit with 3 after starting everything, and 3 is relay's "not found"."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):  # SO_REUSEADDR, as uvicorn binds
            pass
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            why = f"is in use (another relay node, or another server?): choose another with {hint}"
        else:
            why = f"cannot be listened on: {e.strerror or e}"
        fail(f"{host}:{port} {why}", EXIT_CANNOT_LISTEN)


async def _check_and_seed(s: Settings) -> str | None:
    """Fail fast if Redis is unreachable, create the demo environment on a fresh embedded Redis, and
    return what to show about it (relay.cli.demo.demo_banner) when the node serves it."""
    async with open_storage(s) as storage:
        host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host
        return await demo_banner(WritePath(storage, actor="relay"), s.data_dir, f"http://{host}:{s.port}")
