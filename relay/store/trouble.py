"""Redis trouble, named: a RedisError (or a socket's OSError) as relay's RedisUnavailable.

The condition is read from the exception's class where redis-py has one, else from Redis's own
words: an error inside a Lua script reaches the client as a generic ResponseError on Redis 6
("Error running script … -OOM command not allowed …"), so the text is checked as well. Messages
never name a URL or a password: they may reach an HTTP client; `detail` keeps Redis's words for logs.
"""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    MaxConnectionsError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from relay.errors import RedisUnavailable

# Where redis-py raises a plain ConnectionError or ResponseError, Redis's words say which it is.
_WORDS = (
    ("OOM command not allowed", "out_of_memory"),
    ("READONLY", "read_only"),
    ("WRONGPASS", "auth"),
    ("NOAUTH", "auth"),
    ("NOPERM", "no_permission"),
    ("LOADING", "loading"),
    ("No connection available", "pool_exhausted"),  # BlockingConnectionPool, after its timeout
    ("Too many connections", "pool_exhausted"),
)
_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (OutOfMemoryError, "out_of_memory"),
    (ReadOnlyError, "read_only"),
    (AuthenticationError, "auth"),
    (AuthorizationError, "auth"),
    (NoPermissionError, "no_permission"),
    (BusyLoadingError, "loading"),
    (MaxConnectionsError, "pool_exhausted"),
    (RedisTimeoutError, "timeout"),
    (TimeoutError, "timeout"),
)
MESSAGES = {
    "out_of_memory": "Redis is out of memory (maxmemory reached) and refuses writes",
    "read_only": "Redis is a read-only replica and refuses writes (point relay at the primary, or at Sentinel)",
    "auth": "Redis refused relay's credentials (wrong password or ACL user)",
    "no_permission": "Redis's ACL does not allow relay this command",
    "pool_exhausted": "every Redis connection of this pool is in use",
    "timeout": "Redis did not answer in time",
    "unreachable": "Redis is unreachable",
    "loading": "Redis is loading its data",
    "error": "Redis failed the command",
}
# Seconds a client is asked to wait: a full pool frees up in milliseconds, the rest take longer.
RETRY_AFTER = {"pool_exhausted": 1, "timeout": 2, "out_of_memory": 10, "auth": 30, "no_permission": 30}


def condition_of(error: BaseException) -> str:
    """The condition's name (a key of MESSAGES) for a Redis failure."""
    text = str(error)
    for words, condition in _WORDS:
        if words in text:
            return condition
    for cls, condition in _CLASSES:
        if isinstance(error, cls):
            return condition
    if isinstance(error, (RedisConnectionError, OSError)):
        return "unreachable"
    return "error"


def trouble(error: BaseException, what: str = "") -> RedisUnavailable:
    """`error` as relay's error: its condition and a message saying it (`what`: for what, e.g.
    "storing events"), Redis's own words in `detail`."""
    condition = condition_of(error)
    message = MESSAGES[condition] + (f" ({what})" if what else "")
    detail = f"{type(error).__name__}: {error}"
    return RedisUnavailable(condition, message, detail=detail, retry_after=RETRY_AFTER.get(condition, 5))


# What callers catch to hand to `trouble` (redis-py wraps most socket errors, not all).
FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError)
