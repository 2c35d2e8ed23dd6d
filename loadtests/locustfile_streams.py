"""Many open SSE streams while other users measure how request latency holds up.

    RELAY_LOADTEST_SDK_KEY=sdk-… RELAY_LOADTEST_CLIENT_ID=… \\
    locust -f loadtests/locustfile_streams.py --host http://127.0.0.1:8030 \\
        --headless -u 500 -r 100 -t 120s --csv streams

Most users hold one stream each (server `/all` or a browser `/eval` for their own context) and
read it until the test ends; a few send evalx requests, whose latency is the figure to watch.
"""

from __future__ import annotations

import base64
import json
import os
import random

from locust import FastHttpUser, User, between, task
from locust.exception import StopUser

SDK_KEY = os.environ.get("RELAY_LOADTEST_SDK_KEY", "")
CLIENT_ID = os.environ.get("RELAY_LOADTEST_CLIENT_ID", "")


def b64(ctx: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(ctx).encode()).decode().rstrip("=")


class StreamHolder(FastHttpUser):
    weight = 9

    @task
    def hold(self) -> None:
        if random.random() < 0.5:
            path, headers, name = "/all", {"Authorization": SDK_KEY}, "/all (held)"
        else:
            ctx = {"kind": "user", "key": f"stream-{random.randrange(1_000_000)}"}
            path, headers, name = f"/eval/{CLIENT_ID}/{b64(ctx)}", {}, "/eval/[id]/[ctx] (held)"
        with self.client.get(path, headers=headers, stream=True, name=name, catch_response=True) as response:
            response.success()
            try:
                while response.stream.read(4096):  # until the test stops this user
                    pass
            except Exception:  # the server ended the stream (restart, drop): reconnect next task
                pass
        raise StopUser()


class Requester(FastHttpUser):
    weight = 1
    wait_time = between(0.05, 0.1)

    @task
    def evalx(self) -> None:
        ctx = {"kind": "user", "key": f"user-{random.randrange(10_000)}"}
        self.client.get(f"/sdk/evalx/{CLIENT_ID}/contexts/{b64(ctx)}", name="/sdk/evalx/[id]/contexts/[ctx]")


__all__ = ["Requester", "StreamHolder", "User"]
