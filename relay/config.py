"""Settings: one typed object, read once. Defaults < config file < RELAY_* variables < CLI flags.

The file is `$RELAY_CONFIG`, else `config/relay.yaml` if it exists. Every setting has an
environment twin: `redis_url` is `RELAY_REDIS_URL`. A bad value fails fast, naming the key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs
import yaml

from relay.errors import ValidationError
from relay.evaluation.evaluator import FUSE_AFTER

DEFAULT_FILE = Path("config/relay.yaml")


@dataclass(frozen=True, slots=True)
class Settings:
    # Redis: None means "start an embedded redis-server under data_dir".
    redis_url: str | None = None
    redis_password: str | None = None
    redis_prefix: str = "relay"
    # TLS to Redis (rediss:// and rediss+sentinel:// URLs): the CA bundle that verifies Redis (default:
    # the system's), and a client certificate and key when Redis asks for one (mutual TLS).
    redis_tls_ca_file: str | None = None
    redis_tls_cert_file: str | None = None
    redis_tls_key_file: str | None = None
    # Seals SDK keys at rest for secure mode (relay.access.sealing); never stored in Redis. 32+ characters.
    secret_key: str | None = None
    # The embedded Redis's directory. load_settings fills it in when unset: $RELAY_HOME, else ./.relay
    # where one exists already (where relay kept it before), else the user's data folder
    # (~/.local/share/relay on Linux): one per user, whatever the current directory.
    data_dir: str = ".relay"
    # The HTTP server (relay serve).
    host: str = "127.0.0.1"
    port: int = 8030
    workers: int = 1
    heartbeat_interval: float = 30.0
    max_body_bytes: int = 1_048_576  # request bodies (contexts, events) beyond this get 413
    max_head_bytes: int = 65_536  # request line + headers beyond this get 431
    max_headers: int = 100  # more headers than this get 431
    head_timeout: float = 10.0  # seconds for a request head to arrive (else 408, or closed if idle)
    body_timeout: float = 10.0  # seconds for a request body to arrive in full once its head has (else 408)
    keepalive_timeout: float = 5.0  # seconds an idle kept-alive connection stays open
    # Streams: a per-node cap (503 + Retry-After beyond it) and a lifetime ending each stream after
    # max_lifetime × (1 - jitter … 1), so SDKs reconnect, spreading over nodes after a rolling restart.
    max_stream_connections: int = 20_000
    stream_max_lifetime: float = 3600.0  # 0: streams last until the client leaves
    stream_lifetime_jitter: float = 0.25
    stream_retry_after: int = 5  # seconds suggested to clients refused for the cap (jittered up to 2×)
    # Evaluated client streams (/eval, /meval): bytes of distinct contexts a node holds (each counted
    # once, as serialized; a context's results cost a few times that). A new one beyond: 503.
    client_stream_context_bytes: int = 64 * 1024 * 1024
    response_cache_entries: int = 10_000  # recent evalx bodies kept per node (0: no cache)
    # All-flags calls (evalx, OFREP bulk, client streams) a ruleset serves before its flags are
    # fused, 64 at a time, into one generated function each (relay.evaluation.generated.fusion;
    # ~1.8 KB of code per flag and audience). -1: never.
    fuse_after: int = FUSE_AFTER
    # Sync: how often a node double-checks each environment's data version (catches lost pub/sub).
    version_check_interval: float = 5.0
    reconnect_max_delay: float = 10.0
    redis_timeout: float = 5.0  # a Redis command unanswered this long means Redis is lost (stale)
    # Retention of the capped Redis streams.
    audit_max_entries: int = 100_000
    events_max_entries: int = 100_000
    # SDK events (relay.store.events), which must never crowd out flags: the bytes of stored events
    # per environment (the oldest are trimmed beyond it; see docs/deployment.md for the sizing),
    # a Redis of their own if set (same password and TLS settings), and their own connection pool,
    # so event traffic never waits on, or starves, the sync loop and the write path (a full pool: 503).
    events_max_bytes: int = 16_777_216
    events_redis_url: str | None = None
    events_redis_connections: int = 16
    # Event posts per second per credential on each node (a token bucket; a post costs one token per
    # 64 KiB of inflated body, at least one), and the bucket's size. Beyond it: 429 + Retry-After. 0: no limit.
    events_rate_limit: float = 200.0
    events_rate_burst: int = 400
    # The write path: one flag or segment's JSON beyond this is refused. Each change travels whole in a
    # pub/sub message, and Redis drops subscribers whose output buffer passes 8 MB (its default).
    max_item_bytes: int = 4_194_304
    # The admin listener (relay.admin: /api/v1 behind personal access tokens): "host:port", "" for none.
    # Firewall it as any admin port. With sdk_port_ops, /status and /metrics stay on the SDK port too.
    admin_listen: str = "127.0.0.1:8031"
    sdk_port_ops: bool = True
    # Strict writes refuse, with the JSON path, what LaunchDarkly's SDKs evaluate without error but a
    # writer should hear of (a clause value its operator never matches, an index evaluating to
    # MALFORMED_FLAG, ...): by default such items are written and each finding is a warning
    # (docs/compatibility.md). `--strict` asks for it on one command.
    strict_writes: bool = False
    # Logging: "text" for people, "json" for machines.
    log_level: str = "info"
    log_format: str = "text"
    # One log line per HTTP request (uvicorn's access log). Off by default, as in LaunchDarkly's
    # Relay Proxy: at thousands of evaluations a second it costs ~6% of each request.
    access_log: bool = False

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    def masked(self) -> dict[str, Any]:
        """The settings with secrets masked, for `relay config show` and logs."""
        out = dataclasses.asdict(self)
        if self.redis_password:
            out["redis_password"] = "****"
        if self.redis_url:
            out["redis_url"] = redact_url(self.redis_url)
        if self.events_redis_url:
            out["events_redis_url"] = redact_url(self.events_redis_url)
        if self.secret_key:
            out["secret_key"] = "****"
        return out


def admin_address(listen: str) -> tuple[str, int]:
    """`admin_listen` as (host, port): "127.0.0.1:8031", "[::1]:8031", ":8031" (every address)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError("admin_listen", f'expected "host:port" (or "" for no admin listener), got {listen!r}')
    return (host.strip("[]") or "0.0.0.0"), int(port)


def redact_url(url: str) -> str:
    """A Redis URL with its password replaced by ****."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))


_FIELDS = {f.name: f for f in fields(Settings)}


def _cast(name: str, value: Any, where: str) -> Any:
    """`value` as setting `name`'s type; a ValidationError naming `where` it came from otherwise."""
    kind = _FIELDS[name].type
    try:
        if kind in ("int",):
            return int(value)
        if kind in ("float",):
            return float(value)
        if kind in ("bool",):
            return _boolean(value)
        if value is None or value == "":
            return None if "None" in str(kind) else ""
        return str(value)
    except (TypeError, ValueError):
        raise ValidationError(where, f"expected {kind}, got {value!r}") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


def default_data_dir(environ: Mapping[str, str]) -> str:
    """The embedded Redis's directory when no data_dir is set: $RELAY_HOME, else ./.relay if it
    exists, else the user's data folder. Before, it was always ./.relay, so a command run from
    another directory silently started a second Redis, with new demo keys."""
    home = environ.get("RELAY_HOME")
    if home:
        return str(Path(home).expanduser().absolute())
    if Path(".relay").is_dir():
        return str(Path(".relay").absolute())
    return platformdirs.user_data_dir("relay", appauthor=False)


def load_settings(environ: Mapping[str, str] | None = None, config_file: str | None = None) -> Settings:
    """Defaults, then the YAML file, then RELAY_* variables (which win)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = Path(config_file or environ.get("RELAY_CONFIG") or DEFAULT_FILE)
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValidationError(str(path), f"invalid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ValidationError(str(path), "expected a mapping of settings")
        for name, value in data.items():
            if name not in _FIELDS:
                raise ValidationError(f"{path}: {name}", f"unknown setting (known: {', '.join(_FIELDS)})")
            values[name] = _cast(name, value, f"{path}: {name}")
    elif config_file or environ.get("RELAY_CONFIG"):
        raise ValidationError(str(path), "config file not found")
    for name in _FIELDS:
        env_name = f"RELAY_{name.upper()}"
        if env_name in environ:
            values[name] = _cast(name, environ[env_name], f"${env_name}")  # as the variable is spelt
    if "data_dir" not in values:
        values["data_dir"] = default_data_dir(environ)
    settings = Settings(**values)
    if settings.log_format not in ("text", "json"):
        raise ValidationError("log_format", f'expected "text" or "json", got {settings.log_format!r}')
    if settings.workers < 1:
        raise ValidationError("workers", "must be at least 1")
    if not 0 <= settings.stream_lifetime_jitter < 1:
        raise ValidationError("stream_lifetime_jitter", "must be at least 0 and below 1")
    for name in ("events_max_bytes", "events_redis_connections", "events_rate_burst"):
        if getattr(settings, name) < 1:
            raise ValidationError(name, "must be at least 1")
    if settings.events_rate_limit < 0:
        raise ValidationError("events_rate_limit", "must be at least 0 (0: no limit)")
    for name in (
        "max_body_bytes",
        "max_head_bytes",
        "max_headers",
        "max_stream_connections",
        "client_stream_context_bytes",
    ):
        if getattr(settings, name) < 1:
            raise ValidationError(name, "must be at least 1")
    if settings.admin_listen:
        admin_address(settings.admin_listen)
    if settings.secret_key is not None and len(settings.secret_key) < 32:
        raise ValidationError("secret_key", "must be at least 32 characters (see docs/security.md)")
    return settings
