"""`swebox eval parse-log`: a test runner's log as the `{test_id: status}` map grading uses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from swebox.errors import BadInput


def parse_log(
    file: Path = typer.Argument(..., help="The log (or JUnit XML report) to parse; - for stdin."),
    fmt: str = typer.Option("pytest", "--format", "-f", help="The runner that wrote it: pytest, "
                            "unittest, django, sympy, gotest, cargo, jest, maven or junit."),
) -> None:
    """Print the statuses parsed from a test log as JSON (sorted keys)."""
    from swebox.grading.parsers import get_parser
    from swebox.grading.parsers import parse_log as parse

    get_parser(fmt)  # an unknown format is reported before the file is read
    if str(file) == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise BadInput(f"{file}: no such file") from None
        except IsADirectoryError:
            raise BadInput(f"{file}: is a directory, expected a log file") from None
        except OSError as e:
            raise BadInput(f"{file}: cannot read ({e.strerror})") from None
    # Plain output, not rich: test ids are full of `[...]`, which rich would read as markup.
    # ASCII-escaped JSON survives any terminal or pipe encoding.
    typer.echo(json.dumps(parse(fmt, data), sort_keys=True, indent=2))
