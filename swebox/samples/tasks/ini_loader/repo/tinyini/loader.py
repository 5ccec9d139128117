"""Entry points for loading configuration from text or files."""

from __future__ import annotations

from typing import Dict, TextIO

from .config import Config
from .parser import parse


def loads(text: str, defaults: Dict[str, str] = {}, *, source: str = "<string>") -> Config:
    """Parse INI ``text`` into a :class:`~tinyini.config.Config`.

    :param defaults: fallback values for every section.  Options from the
        file's ``[DEFAULT]`` section take precedence over these.
    :param source: name used in :class:`~tinyini.parser.ParseError` messages.
    """
    sections, file_defaults = parse(text, source=source)
    defaults.update(file_defaults)
    return Config(sections, defaults)


def load(fp: TextIO, defaults: Dict[str, str] = {}) -> Config:
    """Read and parse an open text file; see :func:`loads`."""
    source = getattr(fp, "name", "<stream>")
    return loads(fp.read(), defaults, source=str(source))
