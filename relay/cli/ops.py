"""`relay config show`, `relay serve`, `relay redis …`: running relay."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from relay import logs
from relay.cli.common import echo_json, fail, open_storage, settings
from relay.embedded import EmbeddedRedis
from relay.errors import RelayError
from relay.ruleset import Change
from relay.sync import Sync


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
@click.option("--host", help="Address to listen on (default from settings).")
@click.option("--port", type=int, help="Port (default from settings).")
@click.option("--workers", type=int, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run a relay node: load every environment from Redis and keep it current.

    With the embedded Redis, it is started if needed (with the demo environment on first start)
    and stopped again when the node exits, if this command started it.
    """
    s = settings().replace(host=host, port=port, workers=workers)
    logs.configure(s.log_level, s.log_format)
    log = logging.getLogger("relay.serve")
    embedded = EmbeddedRedis(s.data_dir) if s.embedded else None
    started = embedded.start() if embedded else False

    def report(env: str, changes: list[Change]) -> None:
        log.info("%s: %s", env, ", ".join(f"{c.kind} {c.key} v{c.item.version}" for c in changes))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # drain like Ctrl-C
        async with open_storage(s) as storage:
            sync = Sync(
                storage,
                version_check_interval=s.version_check_interval,
                reconnect_max_delay=s.reconnect_max_delay,
                on_change=report,
            )
            runner = asyncio.create_task(sync.run())
            await sync.loaded.wait()
            echo_json(sync.status())
            log.info("relay node running; change flags with `relay flags toggle KEY --off --env ENV`")
            try:
                await runner
            finally:
                runner.cancel()

    try:
        asyncio.run(main())
    except RelayError as e:
        fail(e)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        if started and embedded is not None:
            embedded.stop()
            log.info("stopped the embedded redis-server (data kept in %s)", embedded.dir)
