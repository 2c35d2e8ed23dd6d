"""LaunchDarkly Relay Proxy's configuration file, read for its environments and their keys.

The file is gcfg's (git-config-like) format: `[Main]`, `[Redis]`, `[Environment "Name"]` sections,
`name = value` lines, `;` and `#` comments, values quoted or not (`"…"` with `\\"`, `\\\\`, `\\n`,
`\\t` escapes), and a key given more than once (`allowedOrigin`) holding every value. Python's
configparser does not read quoted subsection names, hence this small parser. Pure: text in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from relay.errors import ValidationError

_SECTION = re.compile(r'\A\[\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:"((?:[^"\\]|\\.)*)")?\s*\]\s*(?:[;#].*)?\Z')
_NAME = re.compile(r"\A([A-Za-z][A-Za-z0-9_-]*)\s*(?:=(.*))?\Z")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
# Fields relay takes from an environment block, and those it reads but has no use for (and why).
IMPORTED = {"sdkkey", "mobilekey", "envid", "securemode"}
NOT_USED = {
    "allowedorigin": "relay has no per-environment origin list (it answers CORS like LaunchDarkly's service); "
    "restrict origins in the reverse proxy in front of relay",
    "allowedheader": "relay has no per-environment CORS header list",
    "prefix": "that is the Redis/Consul/DynamoDB prefix of LaunchDarkly's store; relay keeps its own layout",
    "tablename": "DynamoDB is not used by relay",
    "ttl": "relay's PHP polling answers carry their own caching headers",
    "loglevel": "relay's log level is node-wide (RELAY_LOG_LEVEL)",
}


@dataclass(frozen=True, slots=True)
class LdEnvironment:
    """One `[Environment "NAME"]` block: its fields by lowercase name (gcfg's names ignore case),
    each with every value given, in order, and the line the block starts on."""

    name: str
    line: int
    fields: dict[str, list[str]] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        """The field's last value (gcfg's rule for a single-valued field given twice), or None."""
        values = self.fields.get(name.lower())
        return values[-1] if values else None


def _value(raw: str, line: int) -> str:
    """A gcfg value: quoted parts unescaped, an unquoted comment dropped, outer whitespace trimmed."""
    out: list[str] = []
    quoted, i, pending_space = False, 0, ""
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            if i + 1 >= len(raw) or raw[i + 1] not in _ESCAPES:
                raise ValidationError("config", f"line {line}: an unknown escape in {raw.strip()!r}")
            out.append(pending_space + _ESCAPES[raw[i + 1]])
            pending_space, i = "", i + 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and c in ";#":
            break
        elif not quoted and c.isspace():
            pending_space += c if out else ""  # whitespace inside an unquoted value is kept, at its ends not
        else:
            out.append(pending_space + c)
            pending_space = ""
        i += 1
    if quoted:
        raise ValidationError("config", f"line {line}: a quoted value is not closed")
    return "".join(out)


def parse(text: str) -> tuple[list[LdEnvironment], list[str]]:
    """The environment blocks of an ld-relay configuration file, and the names of its other sections.

    A line that is not a section, a `name = value`, a comment or blank is a ValidationError with its
    line number (ld-relay would not start with it either)."""
    envs: list[LdEnvironment] = []
    others: list[str] = []
    current: LdEnvironment | None = None
    in_section = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            m = _SECTION.match(line)
            if m is None:
                raise ValidationError("config", f"line {number}: not a section header: {line!r}")
            section, sub = m.group(1), m.group(2)
            in_section = True
            if section.lower() == "environment":
                if sub is None:
                    raise ValidationError("config", f'line {number}: [Environment] needs a name: [Environment "NAME"]')
                current = LdEnvironment(_value(f'"{sub}"', number), number)
                envs.append(current)
            else:
                current = None
                others.append(section if sub is None else f'{section} "{sub}"')
            continue
        m = _NAME.match(line)
        if m is None or not in_section:
            raise ValidationError("config", f"line {number}: expected name = value inside a section, got {line!r}")
        if current is not None:
            # A name with no "=" is gcfg's shorthand for true.
            value = "true" if m.group(2) is None else _value(m.group(2), number)
            current.fields.setdefault(m.group(1).lower(), []).append(value)
    return envs, others


def boolean(value: str | None, where: str) -> bool:
    """ld-relay's booleans: true/1 are true; false/0/empty are false; anything else is an error."""
    v = (value or "").strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0", ""):
        return False
    raise ValidationError("secureMode", f"{where}: secureMode must be true, false, 1 or 0, got {value!r}")


def relay_key(name: str) -> str:
    """The relay environment key for an ld-relay environment name: lowercased, every run of other
    characters than letters, digits, ".", "_" and "-" made one "-", "-" trimmed at the ends, at most
    64 characters ("Spree Project Production" → "spree-project-production")."""
    key = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-")[:64].strip("-")
    if not key:
        raise ValidationError("env", f'the environment name "{name}" has no letters or digits to make a key of')
    return key
