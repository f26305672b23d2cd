"""Every command of the product's interface exists and has help with an example."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector.cli import cli

COMMANDS = [
    ["init"], ["check"], ["status"], ["audit", "verify"], ["inspect"], ["ingest"], ["pull"], ["assign"],
    ["statements", "import"], ["reconcile"], ["export", "reconciliation"], ["report"], ["run"], ["serve"],
    ["sandbox-factor"], ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
