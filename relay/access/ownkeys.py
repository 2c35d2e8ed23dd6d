"""Keys an environment is given instead of made: existing LaunchDarkly keys brought along.

LaunchDarkly's SDK keys look like `sdk-<uuid>`, mobile keys `mob-<uuid>`, client-side IDs 24 hex
digits; relay's own are `sdk-<32 hex>`, `mob-<32 hex>` and 24 hex digits. The check is loose (the
prefix and URL-safe characters), so both pass and a slip (a pasted newline, a swapped field, a
key cut in half into nothing) is refused with the field's name before anything is stored.
"""

from __future__ import annotations

import re

from relay.errors import ValidationError

MAX_KEY_LENGTH = 200
# URL-safe: a client-side ID is a path segment of browser URLs, and keys travel in headers.
_SAFE = re.compile(r"\A[A-Za-z0-9._-]+\Z")
_PREFIX = {"sdkKey": "sdk-", "mobileKey": "mob-", "clientSideId": ""}
_WHAT = {"sdkKey": "SDK key", "mobileKey": "mobile key", "clientSideId": "client-side ID"}


def check_given_key(field: str, value: object) -> str:
    """`value` if it has the shape of a `field` ("sdkKey", "mobileKey" or "clientSideId"); else a
    ValidationError naming the field. The key itself is never in the message (it is a secret)."""
    what = _WHAT[field]
    if not isinstance(value, str):
        raise ValidationError(field, f"the {what} must be a string")
    if not value.strip():
        raise ValidationError(field, f"the {what} is empty")
    if len(value) > MAX_KEY_LENGTH:
        raise ValidationError(field, f"the {what} is {len(value)} characters long (at most {MAX_KEY_LENGTH})")
    if not _SAFE.fullmatch(value):
        raise ValidationError(
            field, f'the {what} holds whitespace or other characters than letters, digits, ".", "_" and "-"'
        )
    prefix = _PREFIX[field]
    if not value.startswith(prefix) or value == prefix:
        raise ValidationError(field, f'a LaunchDarkly {what} starts with "{prefix}" and goes on')
    return value
