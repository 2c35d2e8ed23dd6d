"""`relay loadtest …`: seed a synthetic ruleset, measure kill-switch propagation, run the floor."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import click

from relay.cli.common import actor_option, env_option, fail, redis_url, run, settings
from relay.config import redact_url
from relay.errors import RelayError
from relay.loadtest import floor as floor_server
from relay.loadtest import plot, propagation, report, soak
from relay.loadtest.propagation import progress
from relay.loadtest.results import NoSamples
from relay.loadtest.seed import ruleset
from relay.loadtest.streams import StreamsNotReady
from relay.store.storage import RedisError, Storage, unavailable
from relay.store.writes import WritePath

# `relay loadtest propagation` exits 0 when every stream got every flip in order; 1 when one did
# not (or none got any); 6 when streams failed to connect, so nothing was flipped; else the CLI's
# usual codes (2 usage, 3 unknown environment, 5 Redis unreachable). docs/loadtesting.md.
EXIT_INCORRECT = 1
EXIT_NOT_CONNECTED = 6


def _plot_paths(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if Path(value).suffix.lower() not in (*plot.SUFFIXES, ".htm"):
            raise click.BadParameter(f"{value}: the plot is written as {', '.join(plot.SUFFIXES)} (by its suffix)")
    if values:
        try:
            plot.require()
        except plot.PlotUnavailable as e:
            raise click.BadParameter(str(e)) from None
    return values


@click.group("loadtest")
def loadtest_group() -> None:
    """Load and propagation testing tools (send traffic only to deployments you run)."""


@loadtest_group.command("seed")
@env_option
@click.option("--flags", "n_flags", default=1000, show_default=True, help="How many flags.")
@click.option("--segments", "n_segments", default=50, show_default=True, help="How many segments.")
@click.option("--seed", "seed", default=0, show_default=True, help="Random seed (same seed, same ruleset).")
@click.option("--batch", default=500, show_default=True, help="Items per atomic write.")
@actor_option
def seed(env: str, n_flags: int, n_segments: int, seed: int, batch: int, actor: str) -> None:
    """Write a synthetic, realistic ruleset through the normal write path (validated, audited)."""
    doc = ruleset(n_flags, n_segments, seed)
    items = [("segments", k, v) for k, v in doc["segments"].items()] + [
        ("flags", k, v) for k, v in doc["flags"].items()
    ]

    async def go(storage: Storage) -> int:
        writer = WritePath(storage, actor=actor)
        bar = progress(len(items), "writing", True, unit="item")  # (its rate said "conn/s")
        written = 0
        for i in range(0, len(items), batch):
            part: dict[str, dict[str, object]] = {"flags": {}, "segments": {}}
            for kind, key, item in items[i : i + batch]:
                part[kind][key] = item
            written += len((await writer.import_items(env, part, comment="loadtest seed")).items)
            bar.update(len(items[i : i + batch]))
        bar.close()
        return written

    written = run(go)
    click.echo(f"seeded {env}: {n_flags} flags, {n_segments} segments ({written} items written)")


@loadtest_group.command("propagation")
@click.option("--target", required=True, help="The relay node's base URL, e.g. http://127.0.0.1:8030.")
@env_option
@click.option("--sdk-key", envvar="RELAY_LOADTEST_SDK_KEY", help="The environment's SDK key (for server streams).")
@click.option("--kind", type=click.Choice(["server", "client", "mix"]), default="server", show_default=True)
@click.option("--connections", default=100, show_default=True, help="SSE connections to hold open.")
@click.option("--contexts", default=100, show_default=True, help="Distinct contexts for client streams.")
@click.option("--flips", default=5, show_default=True, help="How many times to flip the flag.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between flips.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for connections and events.")
@click.option(
    "--allow-partial", is_flag=True,
    help="If some streams fail to connect, measure the others instead of stopping (at least one must connect).",
)  # fmt: skip
@click.option(
    "--via", type=click.Choice(["redis", "api"]), default="redis", show_default=True,
    help="Flip through the write path on Redis (as `relay flags toggle` does without RELAY_API_URL), or with a "
    "PATCH merge patch {\"on\": …} to the admin API (--api-url, --token).",
)  # fmt: skip
@click.option("--api-url", envvar="RELAY_API_URL", help="The admin listener, e.g. http://127.0.0.1:8031 (--via api).")
@click.option("--token", envvar="RELAY_TOKEN", help="A writer token for the environment (--via api).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the JSON report here.")
@click.option(
    "--plot", "plot_paths", multiple=True, type=click.Path(dir_okay=False), callback=_plot_paths,
    help="Write the latency plot here: FILE.html (self-contained page), FILE.png or FILE.svg; repeatable.",
)  # fmt: skip
def propagation_command(
    target: str, env: str, sdk_key: str | None, kind: str, connections: int, contexts: int, flips: int,
    interval: float, timeout: float, allow_partial: bool, via: str, api_url: str | None, token: str | None,
    report_path: str | None, plot_paths: tuple[str, ...],
) -> None:  # fmt: skip
    """Flip a flag through the write path (or the admin API) and time commit -> event on every connection.

    The commit time is when this tool's own Redis subscriber sees the change, so neither the CLI's
    start-up nor the node's is counted. Redis is RELAY_REDIS_URL (or the embedded one). The report
    also gives asked -> event: from the flip's call (--via redis) or request sent (--via api) to each
    stream, the figure to compare the two paths by.

    Every stream must connect and get its first event before the first flip; if any fails, the
    tool says why (with counts), writes nothing and exits 6 (unless --allow-partial).
    """
    if kind != "client" and not sdk_key:
        raise click.UsageError(
            f"--kind {kind} opens server-side streams: they need --sdk-key (or RELAY_LOADTEST_SDK_KEY)"
        )
    if via == "api" and not (api_url and token):
        raise click.UsageError("--via api flips with PATCH on the admin API: it needs --api-url and --token")
    s = settings()
    plan = propagation.Plan(
        target=target.rstrip("/"), redis_url=redis_url(s), env=env, sdk_key=sdk_key, kind=kind,
        connections=connections, contexts=contexts, flips=flips, interval=interval, timeout=timeout,
        prefix=s.redis_prefix, allow_partial=allow_partial, via=via, api_url=api_url, token=token,
    )  # fmt: skip
    try:
        result = _run_fast(propagation.run(plan))
    except StreamsNotReady as e:
        partial = f"; --allow-partial measures the {e.connected} that did" if e.connected else ""
        fail(f"{e}\nnothing was flipped and nothing written to Redis{partial}", EXIT_NOT_CONNECTED)
    except NoSamples as e:
        fail(str(e), EXIT_INCORRECT)
    except propagation.ApiFlipError as e:
        fail(str(e), EXIT_INCORRECT)
    except RelayError as e:
        fail(e)
    except (RedisError, OSError) as e:
        fail(unavailable(e, redact_url(plan.redis_url)))
    click.echo(report.text(result))
    if report_path:
        Path(report_path).write_text(report.to_json(result))
    for path in plot_paths:
        plot.write(result, path)
    if not result.correct:
        raise SystemExit(EXIT_INCORRECT)


@loadtest_group.command("plot")
@click.argument("report_path", metavar="REPORT", type=click.Path(exists=True, dir_okay=False))
@click.argument("outputs", metavar="FILE...", nargs=-1, required=True, type=click.Path(dir_okay=False),
                callback=_plot_paths)  # fmt: skip
def plot_command(report_path: str, outputs: tuple[str, ...]) -> None:
    """Draw the plot of a saved propagation report (--report) again: FILE.html, FILE.png or FILE.svg."""
    result = report.from_json(Path(report_path).read_text())
    if not result.deliveries:
        fail(f"{report_path} has no per-sample rows (deliveries): it was written by an older relay", 2)
    for path in outputs:
        plot.write(result, path)
        click.echo(f"wrote {path}")


@loadtest_group.command("soak")
@click.option("--target", required=True, help="The relay node's base URL.")
@env_option
@click.option("--sdk-key", envvar="RELAY_LOADTEST_SDK_KEY", required=True)
@click.option("--minutes", default=10.0, show_default=True)
@click.option("--connections", default=200, show_default=True, help="Streams open at any moment (each churns).")
def soak_command(target: str, env: str, sdk_key: str, minutes: float, connections: int) -> None:
    """Churn streams for minutes while a flag changes; compare the node's RSS, fds and tasks."""
    s = settings()
    result = _run_fast(
        soak.run(target.rstrip("/"), redis_url(s), env, sdk_key, minutes * 60, connections, s.redis_prefix)
    )
    click.echo(json.dumps(result, indent=2))


def _run_fast(coro: Any) -> Any:
    """uvloop when available: the tool should cost as little CPU as it can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@loadtest_group.command("floor")
@env_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8040, show_default=True)
def floor(env: str, host: str, port: int) -> None:
    """Run the reference floor server: one pre-encoded event to every connection per Redis change."""
    s = settings()
    with contextlib.suppress(KeyboardInterrupt):
        _run_fast(floor_server.serve(redis_url(s), env, host, port, s.redis_prefix))
