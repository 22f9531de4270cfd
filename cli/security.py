"""`flask security-table`: print workflow.policy's permission matrix, or write it into docs/security.md."""

from __future__ import annotations

from pathlib import Path

import click

from workflow.policy_table import matrix_markdown, replace_matrix

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


@click.command("security-table")
@click.option("--write", is_flag=True, help=f"replace the generated section of {DOC.name} instead of printing")
def security_table_command(write: bool) -> None:
    """The permission matrix (role × relation × action × channel) that workflow.policy enforces."""
    if not write:
        click.echo(matrix_markdown())
        return
    DOC.write_text(replace_matrix(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    click.echo(f"wrote the permission matrix into {DOC}")
