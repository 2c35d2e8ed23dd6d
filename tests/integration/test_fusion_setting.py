"""`fuse_after` (`RELAY_FUSE_AFTER`) reaches every environment's ruleset, and survives a full
reload: -1 keeps the step loop for good; otherwise runs fuse after that many all-flags calls."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from relay.app import create_app
from relay.config import load_settings
from relay.evaluation import parse_context
from relay.server.node import Node
from relay.wire.clientside import for_browsers
from tests.integration.helpers import demo_environment
from tests.integration.redis_server import RedisServer

USER = parse_context({"kind": "user", "key": "ann", "userType": "student"})


@pytest.mark.parametrize("fuse_after", [-1, 2])
def test_the_setting_reaches_each_ruleset_across_reloads(redis_server: RedisServer, fuse_after: int) -> None:
    keys = demo_environment(redis_server.url)
    settings = load_settings({"RELAY_FUSE_AFTER": str(fuse_after)})
    assert settings.fuse_after == fuse_after
    app = create_app(settings, redis_url=redis_server.url)
    starlette: Starlette = app.app  # type: ignore[attr-defined]

    async def check() -> None:
        async with starlette.router.lifespan_context(starlette):
            node: Node = starlette.state.node
            env = node.environment_for_client_id(keys["client_side_id"])
            for reload in (False, True):
                if reload:
                    await starlette.state.sync.resync(env.key)  # a full load: a new snapshot
                snapshot = node.ruleset(env).snapshot
                assert snapshot.fuse_after == fuse_after
                for _ in range(5):
                    snapshot.evaluate_all(USER, for_browsers)
                runs = snapshot.runs(for_browsers)
                assert runs and all((fn is None) == (fuse_after < 0) for fn in runs), (reload, runs)

    asyncio.run(check())
