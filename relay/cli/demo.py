"""The demo environment that a fresh embedded Redis starts with, so `make run` shows something real."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

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
