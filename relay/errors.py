"""relay's error tree. Every class carries the HTTP status and a stable machine-readable code.

RelayError
├── ValidationError          400  invalid_input       bad JSON shape, with the JSON path
│   └── InvalidContextError  400  invalid_context     an evaluation context that cannot be used
├── InvalidSecureModeHash    400  invalid_secure_mode_hash  secure mode: `h` missing or wrong
├── NotFoundError            404  not_found
├── ConflictError            409  version_conflict    optimistic-concurrency check failed
├── Unauthorized             401  unauthorized        missing, unknown or expired key or token (or a revoked token)
├── Forbidden                403  forbidden           a live token whose role or scope does not allow the action
├── PreconditionFailed       412  precondition_failed If-Match named another version than the stored one
├── RateLimited              429  rate_limited        too many failed authentications from one address (Retry-After)
├── BodyTooLarge             413  body_too_large
├── UnsupportedMediaType     415  unsupported_media_type
├── RateLimited              429  rate_limited        a credential's event posts beyond its rate (Retry-After)
├── UnavailableError         503  unavailable         data not loaded yet
│   ├── SecureModeUnavailable 503 secure_mode_unavailable  this node cannot check secure mode
│   └── RedisUnavailable     503  redis_<condition>   Redis refused or failed a command: out of memory,
│                                                      read-only replica, unreachable, pool exhausted, … (Retry-After)
└── OfrepError               4xx  OFREP's errorCode   an OFREP answer (PARSE_ERROR, FLAG_NOT_FOUND, …)

An error with `retry_after` (seconds) is answered with a `Retry-After` header as well.
"""

from __future__ import annotations


class RelayError(Exception):
    status_code = 500
    code = "internal_error"
    retry_after: int | None = None  # seconds, sent as Retry-After (429, 503)


class ValidationError(RelayError):
    """Input refused before anything was written. `path` is a JSON path such as
    `flags.checkout.rules[2].clauses[0].op`."""

    status_code = 400
    code = "invalid_input"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class InvalidContextError(ValidationError):
    code = "invalid_context"


class NotFoundError(RelayError):
    status_code = 404
    code = "not_found"


class ConflictError(RelayError):
    status_code = 409
    code = "version_conflict"


class UnavailableError(RelayError):
    status_code = 503
    code = "unavailable"


class SecureModeUnavailable(UnavailableError):
    code = "secure_mode_unavailable"


class RedisUnavailable(UnavailableError):
    """Redis refused or failed a command. `condition` names why, in a word a program can test
    (`out_of_memory`, `read_only`, `auth`, `no_permission`, `pool_exhausted`, `timeout`,
    `unreachable`, `loading`, `error`); the message says it for people (never a URL or a password,
    as it may reach an HTTP client); `detail` is Redis's own words, for logs."""

    def __init__(self, condition: str, message: str, *, detail: str = "", retry_after: int = 5) -> None:
        super().__init__(message)
        self.condition = condition
        self.code = f"redis_{condition}"
        self.detail = detail
        self.retry_after = retry_after


class InvalidSecureModeHash(RelayError):
    status_code = 400  # what LaunchDarkly answers
    code = "invalid_secure_mode_hash"


class Unauthorized(RelayError):
    """Who is asking is not established: no credential, or one that is unknown, expired or revoked."""

    status_code = 401
    code = "unauthorized"


class Forbidden(RelayError):
    """Who is asking is known, but their role or scope does not cover this: authenticating again with the
    same credential cannot help (which is what a 401 would suggest)."""

    status_code = 403
    code = "forbidden"


class PreconditionFailed(RelayError):
    """A conditional write (If-Match) whose item has moved on: nothing was written."""

    status_code = 412
    code = "precondition_failed"


class RateLimited(RelayError):
    """Too many requests: a credential posting events faster than its rate (relay.server.ratelimit),
    or an address failing to authenticate too often (relay.admin.ratelimit). `retry_after` in seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BodyTooLarge(RelayError):
    status_code = 413
    code = "body_too_large"


class UnsupportedMediaType(RelayError):
    status_code = 415
    code = "unsupported_media_type"


class OfrepError(RelayError):
    """An OFREP error answer: its HTTP status and OFREP's own `errorCode` (PARSE_ERROR,
    FLAG_NOT_FOUND, TARGETING_KEY_MISSING, …), which the OFREP routes put in the body."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status_code, self.code, self.details = status, code, details
