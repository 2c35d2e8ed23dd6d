"""`relay serve`'s two listeners in one process and one event loop: the SDK server, and the admin server beside it.

Only uvicorn's public API: `Server.serve` is extended to run the admin server's `serve` alongside. The admin
server starts first, so that the SDK server's signal handling (and the node's stream draining chained to
it) is the one installed: on SIGTERM the SDK server drains and stops, then the admin server, then the
signal is re-raised as uvicorn does. If the admin listener cannot start (its port is taken), neither does
the node: uvicorn exits.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn


class WithAdmin(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, admin: uvicorn.Config) -> None:
        super().__init__(config)
        self.admin = uvicorn.Server(admin)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        admin = asyncio.create_task(self.admin.serve())
        while not self.admin.started:
            if admin.done():  # it failed to start (uvicorn logged why)
                await admin
                return
            await asyncio.sleep(0.01)
        try:
            await super().serve(sockets)
        finally:
            self.admin.should_exit = True
            await admin
