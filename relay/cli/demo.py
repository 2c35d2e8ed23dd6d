"""The demo environment that a fresh embedded Redis starts with, so `make run` shows something real."""

from __future__ import annotations

import os
import sys
import time
from importlib import resources
from pathlib import Path

from relay.access.environments import Environment
from relay.store.writes import WritePath
from relay.wire import codec

DEMO_ENV = "demo"
CREDENTIALS_FILE = "demo-credentials.json"


def demo_document() -> object:
    return codec.loads(resources.files("relay").joinpath("cli/demo_flags.json").read_bytes(), what="demo flags")


async def seed_demo(writer: WritePath, data_dir: str | Path) -> dict[str, str] | None:
    """Create the demo environment with its flags if Redis has no environment at all.

    Its keys are written to the data directory (mode 0600), for local trying-out only: it is the
    one place relay keeps a secret key in plain text, and only for this demo environment.
    """
    if await writer.storage.environments():
        return None
    _, secrets = await writer.create_environment(DEMO_ENV, "Demo")
    await writer.import_items(DEMO_ENV, demo_document(), comment="demo flags")
    path = Path(data_dir) / CREDENTIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(codec.dumps(secrets, pretty=True))
    return secrets


async def demo_banner(writer: WritePath, data_dir: str | Path, url: str) -> str | None:
    """What `relay serve` prints when it serves the demo environment (every start, so a second
    `make run` shows it again): the URL, the demo keys and commands to try. None when there is no
    demo environment, or its SDK key was rotated since the keys were written down."""
    path = Path(data_dir) / CREDENTIALS_FILE
    raw = await writer.storage.environment(DEMO_ENV)
    if raw is None or not path.exists():
        return None
    keys = codec.loads(path.read_bytes(), what=str(path))
    env = Environment.from_dict(codec.loads(raw))
    if not isinstance(keys, dict) or not env.accepts("sdk", str(keys.get("sdk_key")), int(time.time() * 1000)):
        return None
    sdk, client_id = keys["sdk_key"], keys["client_side_id"]
    relay = sys.argv[0] if sys.argv[0].endswith("relay") else "relay"  # .venv/bin/relay under make run
    return (
        f"relay serves the demo environment at {url}\n"
        f"  SDK key (server-side SDKs):  {sdk}\n"
        f"  client-side ID (browsers):   {client_id}\n"
        f"  mobile key (mobile apps):    {keys.get('mobile_key', '')}\n"
        f"  (kept in {path})\n"
        "Try, in another terminal:\n"
        f"  curl -s -H 'Authorization: {sdk}' {url}/sdk/latest-flags/checkout-kill-switch\n"
        f"  curl -sN -H 'Authorization: {sdk}' {url}/flags      # a stream: leave it open, then\n"
        f"  {relay} flags toggle checkout-kill-switch --off --env {DEMO_ENV}   # and watch the patch arrive"
    )
