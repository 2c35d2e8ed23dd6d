"""What every handler reaches through `request.app.state.node`: built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from relay.auth import KeyIndex, credential
from relay.clientstreams import ClientStreams
from relay.config import Settings
from relay.environments import Environment
from relay.errors import NotFoundError, RelayError, UnavailableError
from relay.hub import Hub
from relay.payloads import ServerPayloads
from relay.ruleset import Ruleset
from relay.sync import Sync


class Unauthorized(RelayError):
    status_code = 401
    code = "unauthorized"


@dataclass
class Node:
    settings: Settings
    sync: Sync
    hub: Hub
    client_streams: ClientStreams = field(default_factory=ClientStreams)
    payloads: ServerPayloads = field(default_factory=ServerPayloads)
    keys: KeyIndex = field(default_factory=KeyIndex)

    def environment_for(self, request: Request, kind: str) -> Environment:
        """The environment whose SDK ("sdk") or mobile ("mobile") key authorizes the request."""
        key = credential(request.headers.get("authorization"))
        if key is None:
            raise Unauthorized("missing Authorization header (the SDK key)")
        self.keys.rebuild(self.sync.environments, self.sync.env_generation)
        env = self.keys.find(kind, key)
        if env is None:
            raise Unauthorized(f"unknown or expired {'SDK' if kind == 'sdk' else 'mobile'} key")
        return env

    def environment_for_client_id(self, client_side_id: str) -> Environment:
        self.keys.rebuild(self.sync.environments, self.sync.env_generation)
        env = self.keys.by_client_id(client_side_id)
        if env is None:
            raise NotFoundError("unknown client-side ID")
        return env

    def ruleset(self, env: Environment) -> Ruleset:
        rs = self.sync.rulesets.get(env.key)
        if rs is None or not rs.ready:
            raise UnavailableError(f'environment "{env.key}" is not loaded yet')
        return rs


def node_of(request: Request) -> Node:
    return request.app.state.node  # type: ignore[no-any-return]
