"""Low-level parsing of INI text into plain dictionaries."""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

DEFAULT_SECTION = "DEFAULT"
COMMENT_PREFIXES = ("#", ";")

_SECTION_RE = re.compile(r"\[(?P<name>[^\]]+)\]")
_OPTION_RE = re.compile(r"(?P<key>[^=:\s][^=:]*?)\s*[=:]\s*(?P<value>.*)")
_INLINE_COMMENT_RE = re.compile(r"\s[#;]")

Sections = Dict[str, Dict[str, str]]


class ParseError(ValueError):
    """Raised for malformed input; carries the offending line number."""

    def __init__(self, message: str, lineno: int, line: str, source: str = "<string>") -> None:
        super().__init__(f"{source}, line {lineno}: {message}: {line!r}")
        self.message = message
        self.lineno = lineno
        self.line = line
        self.source = source


def clean_value(raw: str) -> str:
    """Strip whitespace, inline comments and one level of matching quotes.

    A comment starts at ``#`` or ``;`` preceded by whitespace, so
    ``url = http://host/#anchor`` keeps its fragment.  Quoting a value
    (``"  padded # not a comment "``) preserves it verbatim.
    """
    value = raw.strip()
    if value[:1] in ('"', "'"):
        end = value.find(value[0], 1)
        if end != -1:
            rest = value[end + 1 :].strip()
            if not rest or rest.startswith(COMMENT_PREFIXES):
                return value[1:end]
    match = _INLINE_COMMENT_RE.search(value)
    if match:
        value = value[: match.start()]
    return value.rstrip()


def parse(text: str, *, source: str = "<string>") -> Tuple[Sections, Dict[str, str]]:
    """Parse ``text`` and return ``(sections, file_defaults)``.

    ``sections`` maps section names (case-sensitive, in file order) to their
    options; option names are case-insensitive and stored lower-cased.
    Options of the ``[DEFAULT]`` section are returned separately.  Indented
    lines continue the previous option's value.
    """
    sections: Sections = {}
    file_defaults: Dict[str, str] = {}
    current: Optional[Dict[str, str]] = None
    last_key: Optional[str] = None

    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            last_key = None
            continue
        if stripped.startswith(COMMENT_PREFIXES):
            continue
        if line[0] in " \t" and last_key is not None and current is not None:
            current[last_key] = f"{current[last_key]}\n{clean_value(stripped)}".lstrip("\n")
            continue

        section = _SECTION_RE.fullmatch(stripped)
        if section:
            name = section.group("name").strip()
            if name == DEFAULT_SECTION:
                current = file_defaults
            elif name in sections:
                raise ParseError(f"duplicate section {name!r}", lineno, line, source)
            else:
                current = sections[name] = {}
            last_key = None
            continue

        option = _OPTION_RE.fullmatch(stripped)
        if option is None:
            raise ParseError("expected 'key = value' or '[section]'", lineno, line, source)
        if current is None:
            raise ParseError("option outside of any section", lineno, line, source)
        key = option.group("key").strip().lower()
        current[key] = clean_value(option.group("value"))
        last_key = key

    return sections, file_defaults
