"""The `relay` command line: one group, one module per family of subcommands."""

from __future__ import annotations

import click

from relay.cli.evaluate import eval_command, validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="relay")
def main() -> None:
    """relay: a self-hosted feature-flag relay that speaks LaunchDarkly's and OpenFeature's protocols."""


main.add_command(eval_command)
main.add_command(validate_command)
