"""relay.store.trouble: each Redis failure named, whether redis-py says it by class or only Redis's
words say it (errors inside scripts on Redis 6); a message fit for an HTTP client."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    MaxConnectionsError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from relay.store.trouble import condition_of, trouble

SCRIPT = "Error running script (call to f_c455): @user_script:1: @user_script: 1: "


@pytest.mark.parametrize(
    ("error", "condition"),
    [
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "out_of_memory"),
        (ResponseError(SCRIPT + "-OOM command not allowed when used memory > 'maxmemory'."), "out_of_memory"),
        (ReadOnlyError("You can't write against a read only replica."), "read_only"),
        (ResponseError(SCRIPT + "-READONLY You can't write against a read only replica."), "read_only"),
        (AuthenticationError("invalid username-password pair or user is disabled."), "auth"),
        (ResponseError("WRONGPASS invalid username-password pair"), "auth"),
        (NoPermissionError("this user has no permissions to run the 'config|get' command"), "no_permission"),
        (BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
        (MaxConnectionsError("Too many connections"), "pool_exhausted"),
        (ConnectionError("No connection available."), "pool_exhausted"),  # BlockingConnectionPool
        (TimeoutError("Timeout reading from 127.0.0.1:6379"), "timeout"),
        (ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."), "unreachable"),
        (ConnectionRefusedError(111, "Connection refused"), "unreachable"),
        (ResponseError("ERR unknown command 'XADD'"), "error"),
        (RedisError("something else"), "error"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_each_failure_is_named(error: BaseException, condition: str) -> None:
    assert condition_of(error) == condition


def test_the_error_says_it_for_people_and_keeps_redis_s_words_for_logs() -> None:
    error = trouble(ConnectionError("Error 111 connecting to redis://:hunter2@10.0.0.5:6379."), "storing events")
    assert str(error) == "Redis is unreachable (storing events)" and "hunter2" not in str(error)
    assert error.code == "redis_unreachable" and error.status_code == 503 and error.retry_after == 5
    assert error.detail.startswith("ConnectionError: Error 111")
    assert trouble(MaxConnectionsError("Too many connections")).retry_after == 1
    assert str(trouble(OutOfMemoryError("OOM"))) == "Redis is out of memory (maxmemory reached) and refuses writes"
