"""The ld-relay configuration parser (gcfg syntax), the key mapping, and the given keys' shape checks."""

from __future__ import annotations

import pytest

from relay.access.ldrelay import boolean, parse, relay_key
from relay.access.ownkeys import check_given_key
from relay.errors import ValidationError

# The shape of LaunchDarkly Relay Proxy's docs/configuration.md examples.
CONF = """\
; a comment
# another
[Main]
    port = 8030

[environment "Spree Project Production"]
    sdkKey = "SPREE_PROD_SDK_KEY"
    mobileKey = SPREE_PROD_MOBILE_KEY ; trailing comment
    allowedOrigin = "https://a.example"
    allowedOrigin = https://b.example
    secureMode
[Environment "Spree \\"Test\\""]
    SDKKEY = "with ; inside # too"
    prefix = "  spaced  "
"""


def test_sections_names_values_comments_quotes_and_repeated_keys() -> None:
    envs, others = parse(CONF)
    assert others == ["Main"]
    assert [(e.name, e.line) for e in envs] == [("Spree Project Production", 6), ('Spree "Test"', 12)]
    prod, test = envs
    assert prod.one("sdkKey") == "SPREE_PROD_SDK_KEY" and prod.one("mobilekey") == "SPREE_PROD_MOBILE_KEY"
    assert prod.fields["allowedorigin"] == ["https://a.example", "https://b.example"]
    assert prod.one("secureMode") == "true"  # a name alone is gcfg's true
    assert test.one("sdkKey") == "with ; inside # too" and test.one("prefix") == "  spaced  "
    assert test.one("mobileKey") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[Environment "x"\nsdkKey = a', "line 1: not a section header"),
        ("[Environment]\n", "needs a name"),
        ("sdkKey = a\n", "line 1: expected name = value inside a section"),
        ('[Environment "x"]\nsdkKey = "a\n', "line 2: a quoted value is not closed"),
        ('[Environment "x"]\nsdkKey = "a\\q"\n', "line 2: an unknown escape"),
        ('[Environment "x"]\n= a\n', "line 2: expected name = value"),
    ],
)
def test_malformed_files_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(text)


def test_relay_keys_and_booleans() -> None:
    assert relay_key("Spree Project Production") == "spree-project-production"
    assert relay_key("  Prod/EU (main)  ") == "prod-eu-main"
    assert relay_key("a.b_c-d") == "a.b_c-d"
    assert len(relay_key("x" * 100)) == 64
    with pytest.raises(ValidationError, match="no letters or digits"):
        relay_key("!!!")
    assert [boolean(v, "w") for v in ("true", "1", "TRUE", "false", "0", "", None)] == [True] * 3 + [False] * 4
    with pytest.raises(ValidationError, match="secureMode must be"):
        boolean("yes", "w")


def test_given_key_shapes() -> None:
    for field, value in [
        ("sdkKey", "sdk-8f2a3b4c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"),
        ("sdkKey", "sdk-" + "a" * 32),
        ("mobileKey", "mob-8f2a3b4c-1d2e-4f5a-9b8c-7d6e5f4a3b2c"),
        ("clientSideId", "5f0c3a2b1d4e5f6a7b8c9d0e"),
    ]:
        assert check_given_key(field, value) == value
    for field, value, message in [
        ("sdkKey", "", "sdkKey: the SDK key is empty"),
        ("sdkKey", "   ", "sdkKey: the SDK key is empty"),
        ("mobileKey", "mob-" + "a" * 197, "mobileKey: the mobile key is 201 characters long"),
        ("sdkKey", "sdk-abc\n", "sdkKey: the SDK key holds whitespace"),
        ("sdkKey", "mob-abc", 'sdkKey: a LaunchDarkly SDK key starts with "sdk-"'),
        ("mobileKey", "mob-", 'mobileKey: a LaunchDarkly mobile key starts with "mob-"'),
        ("clientSideId", "a/b", "clientSideId: the client-side ID holds"),
        ("clientSideId", None, "clientSideId: the client-side ID must be a string"),
    ]:
        with pytest.raises(ValidationError, match=message) as refused:
            check_given_key(field, value)
        assert value is None or len(value.strip()) <= 4 or value not in str(refused.value)  # never the key itself
