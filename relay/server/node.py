"""What every handler reaches through `request.app.state.node`: built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from starlette.requests import Request

from relay.auth import KeyIndex, credential
from relay.clientside import BodyEncoder, ResponseCache
from relay.clientstreams import ClientStreams
from relay.config import Settings
from relay.environments import Environment
from relay.errors import NotFoundError, Unauthorized, UnavailableError
from relay.hub import Hub
from relay.payloads import ServerPayloads
from relay.ruleset import Ruleset
from relay.server.streaming import StreamGate
from relay.sync import Sync


@dataclass
class Node:
    settings: Settings
    sync: Sync
    hub: Hub
    client_streams: ClientStreams = field(default_factory=ClientStreams)
    encoder: BodyEncoder = field(default_factory=BodyEncoder)
    responses: ResponseCache = field(default_factory=ResponseCache)
    payloads: ServerPayloads = field(default_factory=ServerPayloads)
    keys: KeyIndex = field(default_factory=KeyIndex)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    gate: StreamGate = field(default_factory=StreamGate)

    def __post_init__(self) -> None:
        self.evaluation_seconds = Histogram(
            "relay_evaluation_seconds",
            "Time to evaluate a request's flags (evalx, OFREP, client stream start)",
            ["route"],
            registry=self.registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )
        self.propagation_seconds = Histogram(
            "relay_propagation_seconds",
            "From a change's write in Redis to its events queued on this node's streams",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )

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
