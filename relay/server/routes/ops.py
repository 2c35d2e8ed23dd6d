"""Operations routes: liveness, readiness, per-environment status, Prometheus metrics."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.runtime.gcpolicy import GCPolicy
from relay.server.ldstatus import add_ld_status
from relay.server.node import Node, node_of
from relay.server.responses import JsonResponse


async def healthz(request: Request) -> Response:
    return JsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready once every environment has been loaded. A node that lost Redis, or whose Redis lost
    data, still serves its last rulesets, so it stays ready (taking every node out of a load
    balancer at once would be the outage); the body names those environments for alerting."""
    state = node_of(request).state
    ready = state.ready()
    body = {
        "ready": ready,
        "redis_connected": state.connected,
        "stale": sorted(env for env, rs in state.rulesets.items() if rs.stale_since is not None),
        "diverged": sorted(env for env, rs in state.rulesets.items() if rs.diverged),
    }
    return JsonResponse(body, status_code=200 if ready else 503)


async def status(request: Request) -> Response:
    """relay's health and each environment's, a superset of LaunchDarkly Relay's /status."""
    node = node_of(request)
    out = node.state.status()
    for env, info in out["environments"].items():
        client, contexts = node.client_streams.count(env)
        info["connections"] = {
            "server_all": node.hub.count(env, "all"),
            "server_flags": node.hub.count(env, "flags"),
            "client": client,
            "client_distinct_contexts": contexts,
            "ping": node.hub.count(env, "ping"),
        }
    gate = node.gate
    out["streams"] = {
        "open": gate.open,
        "max": gate.max_connections,
        "refused": gate.refused,
        "expired": gate.expired,
    }
    out["events_sent"] = node.hub.events_sent
    out["slow_clients_dropped"] = node.hub.dropped + node.client_streams.dropped
    out["client_reevaluations"] = node.client_streams.evaluations
    out["events"] = {
        "posts": dict(sorted(node.event_counts.items())),
        "events": dict(sorted(node.event_fates.items())),
        "max_bytes": node.events.max_bytes,
        "rate_limit": {"per_second": node.event_limits.rate, "burst": node.event_limits.burst},
    }
    out["warnings"] = node.warnings
    streams = node.client_streams
    out["client_stream_contexts"] = {
        "bytes": streams.context_bytes,
        "max_bytes": streams.max_context_bytes,
        "refused": streams.refused,
    }
    out["audit"] = {"max_entries": node.settings.audit_max_entries}  # older entries are trimmed (relay audit)
    out["process"] = _process()
    add_ld_status(out, node.state)  # LaunchDarkly Relay's fields beside relay's (docs/endpoints.md)
    return JsonResponse(out)


def _process() -> dict[str, int | None]:
    """This worker's resident memory, open file descriptors and asyncio tasks (leak watching)."""
    rss = fds = None
    try:
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir("/proc/self/fd"))
    except (OSError, StopIteration, ValueError):  # not Linux
        pass
    return {"rss_kb": rss, "open_fds": fds, "asyncio_tasks": len(asyncio.all_tasks())}


class _Collector:
    """Reads the node's state at scrape time: nothing to keep in step on the hot path."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node, now = self.node, time.time()
        conns = GaugeMetricFamily("relay_stream_connections", "Open stream connections", labels=["env", "kind"])
        version = GaugeMetricFamily("relay_data_version", "Data version held in memory", labels=["env"])
        stale = GaugeMetricFamily("relay_stale_seconds", "Seconds since Redis was lost (0: connected)", labels=["env"])
        diverged = GaugeMetricFamily(
            "relay_redis_diverged", "1 while Redis lacks data this node serves (see relay env accept)", labels=["env"]
        )
        for env, rs in node.state.rulesets.items():
            for kind in ("all", "flags"):
                conns.add_metric([env, kind], node.hub.count(env, kind))
            version.add_metric([env], rs.version)
            stale.add_metric([env], 0 if rs.stale_since is None else now - rs.stale_since)
            diverged.add_metric([env], int(rs.diverged is not None))
        yield conns
        yield version
        yield stale
        yield diverged
        yield CounterMetricFamily(
            "relay_events_sent", "Stream events queued to connections", value=node.hub.events_sent
        )
        yield CounterMetricFamily(
            "relay_slow_clients_dropped", "Streams dropped for falling behind", value=node.hub.dropped
        )
        yield CounterMetricFamily("relay_resyncs", "Full reloads of an environment", value=node.state.resyncs)
        yield GaugeMetricFamily("relay_streams_open", "Open stream connections of every kind", value=node.gate.open)
        yield CounterMetricFamily(
            "relay_streams_refused", "Stream requests refused (503) at the connection cap", value=node.gate.refused
        )
        yield CounterMetricFamily(
            "relay_streams_expired", "Streams ended at their maximum lifetime", value=node.gate.expired
        )
        yield GaugeMetricFamily(
            "relay_redis_connected", "1 while the subscriber is connected", value=int(node.state.connected)
        )
        posts = CounterMetricFamily("relay_event_posts", "Event posts by outcome (see /status)", labels=["outcome"])
        for outcome, n in sorted(node.event_counts.items()):
            posts.add_metric([outcome], n)
        yield posts
        fates = CounterMetricFamily("relay_events", "Events posted, by fate: stored or left out", labels=["fate"])
        for fate, n in sorted(node.event_fates.items()):
            fates.add_metric([fate], n)
        yield fates
        yield GaugeMetricFamily("relay_warnings", "Warnings on /status (Redis memory)", value=len(node.warnings))
        yield from _gc_metrics(node.gate.gc_policy)


def _gc_metrics(gc_policy: GCPolicy) -> Iterator[Metric]:
    """The cyclic GC's pauses (every one blocks the node) and relay.runtime.gcpolicy's freezes."""
    count = CounterMetricFamily("relay_gc_collections", "Cyclic GC collections", labels=["generation"])
    total = CounterMetricFamily("relay_gc_pause_seconds", "Time the node spent in cyclic GC", labels=["generation"])
    longest = GaugeMetricFamily("relay_gc_pause_max_seconds", "Longest cyclic GC pause", labels=["generation"])
    for generation, (n, seconds, top) in gc_policy.pauses.items():
        count.add_metric([str(generation)], n)
        total.add_metric([str(generation)], seconds)
        longest.add_metric([str(generation)], top)
    yield count
    yield total
    yield longest
    yield CounterMetricFamily(
        "relay_gc_freezes", "Batches of stream objects moved out of the GC's passes", value=gc_policy.freezes
    )
    yield GaugeMetricFamily(
        "relay_gc_frozen_objects",
        "Objects out of the GC's passes (should follow open streams)",
        value=gc.get_freeze_count(),
    )


async def metrics(request: Request) -> Response:
    node = node_of(request)
    if not getattr(node, "_collector_registered", False):
        node.registry.register(_Collector(node))  # type: ignore[arg-type]
        node._collector_registered = True  # type: ignore[attr-defined]
    return Response(generate_latest(node.registry), media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/status", status),
    Route("/metrics", metrics),
]
