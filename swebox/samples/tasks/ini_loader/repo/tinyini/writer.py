"""Serialise a :class:`~tinyini.config.Config` back to INI text."""

from __future__ import annotations

from typing import Dict, List, TextIO

from .config import Config
from .parser import COMMENT_PREFIXES, DEFAULT_SECTION


def _format_value(value: str) -> str:
    lines = value.split("\n")
    if len(lines) > 1:
        # Multi-line values are written as indented continuation lines.
        return "\n".join([_format_value(lines[0])] + ["    " + _format_value(line) for line in lines[1:]])
    needs_quotes = (
        value != value.strip()
        or value[:1] in ('"', "'")
        or any(f"{ws}{prefix}" in value for ws in (" ", "\t") for prefix in COMMENT_PREFIXES)
    )
    return f'"{value}"' if needs_quotes else value


def _format_section(name: str, options: Dict[str, str]) -> List[str]:
    lines = [f"[{name}]"]
    for key, value in options.items():
        lines.append(f"{key} = {_format_value(value)}".rstrip())
    return lines


def dumps(config: Config) -> str:
    """Return INI text that :func:`tinyini.loads` parses back to ``config``.

    Only options set on the sections themselves are written for each
    section; inherited defaults are written once, under ``[DEFAULT]``.
    """
    blocks = []
    if config.defaults:
        blocks.append(_format_section(DEFAULT_SECTION, config.defaults))
    for name in config.sections():
        blocks.append(_format_section(name, config.items(name, include_defaults=False)))
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def dump(config: Config, fp: TextIO) -> None:
    """Write :func:`dumps` output to an open text file."""
    fp.write(dumps(config))
