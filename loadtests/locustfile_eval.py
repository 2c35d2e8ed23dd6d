"""Evaluation load: browser evalx (GET and REPORT), OFREP bulk, server-side polling.

    RELAY_LOADTEST_SDK_KEY=sdk-… RELAY_LOADTEST_CLIENT_ID=… RELAY_LOADTEST_CONTEXTS=10000 \\
    locust -f loadtests/locustfile_eval.py --host http://127.0.0.1:8030 --headless -u 32 -r 32 -t 60s --csv eval

Contexts are drawn from a pool of RELAY_LOADTEST_CONTEXTS distinct users (default 10,000).
"""

from __future__ import annotations

import base64
import json
import os
import random

from locust import FastHttpUser, between, task

SDK_KEY = os.environ.get("RELAY_LOADTEST_SDK_KEY", "")
CLIENT_ID = os.environ.get("RELAY_LOADTEST_CLIENT_ID", "")
CONTEXTS = int(os.environ.get("RELAY_LOADTEST_CONTEXTS", "10000"))
PLANS = ["free", "pro", "enterprise"]


def context(i: int) -> dict[str, object]:
    return {"kind": "user", "key": f"user-{i}", "plan": PLANS[i % 3], "email": f"u{i}@example.com", "age": 18 + i % 60}


def b64(ctx: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(ctx).encode()).decode().rstrip("=")


class Browser(FastHttpUser):
    weight = 3
    wait_time = between(0, 0.01)

    @task(3)
    def evalx_get(self) -> None:
        ctx = context(random.randrange(CONTEXTS))
        self.client.get(f"/sdk/evalx/{CLIENT_ID}/contexts/{b64(ctx)}", name="/sdk/evalx/[id]/contexts/[ctx]")

    @task(1)
    def evalx_report(self) -> None:
        ctx = context(random.randrange(CONTEXTS))
        self.client.request(
            "REPORT", f"/sdk/evalx/{CLIENT_ID}/context", json=ctx, name="REPORT /sdk/evalx/[id]/context"
        )


class OpenFeatureWeb(FastHttpUser):
    weight = 2
    wait_time = between(0, 0.01)

    @task
    def ofrep_bulk(self) -> None:
        i = random.randrange(CONTEXTS)
        body = {"context": {"targetingKey": f"user-{i}", "plan": PLANS[i % 3]}}
        self.client.post("/ofrep/v1/evaluate/flags", json=body, headers={"Authorization": f"Bearer {CLIENT_ID}"})


class ServerPolling(FastHttpUser):
    weight = 1
    wait_time = between(0, 0.05)

    @task
    def latest_all(self) -> None:
        self.client.get("/sdk/latest-all", headers={"Authorization": SDK_KEY})
