"""The `relay` command line: one group, one module per family of subcommands."""

from __future__ import annotations

import click

from relay.cli.audit import audit_command
from relay.cli.env import env_group
from relay.cli.evaluate import eval_command, validate_command
from relay.cli.items import flags_group, segments_group
from relay.cli.loadtest import loadtest_group
from relay.cli.ops import config_group, redis_group, serve
from relay.cli.tokens import tokens_group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_file", metavar="FILE", help="Settings file (default: $RELAY_CONFIG, else config/relay.yaml)."
)
@click.version_option(package_name="relay")
def main(config_file: str | None) -> None:
    """relay: a self-hosted feature-flag relay that speaks LaunchDarkly's and OpenFeature's protocols.

    With no RELAY_REDIS_URL, commands use an embedded redis-server, one per user, in $RELAY_HOME
    (default: ./.relay where it exists, else ~/.local/share/relay), started on first use with a demo
    environment. With RELAY_API_URL and RELAY_TOKEN set, flags, segments, env, audit and tokens go
    through the admin API instead, audited with the token's owner. Exit codes: 0 ok, 1 error,
    2 invalid input, 3 not found, 4 version conflict, 5 Redis unavailable (unreachable, out of
    memory, read-only replica, password), 7 relay serve cannot listen on its address.
    """


for command in (
    env_group,
    flags_group,
    segments_group,
    audit_command,
    tokens_group,
    config_group,
    serve,
    redis_group,
    loadtest_group,
    eval_command,
    validate_command,
):
    main.add_command(command)
