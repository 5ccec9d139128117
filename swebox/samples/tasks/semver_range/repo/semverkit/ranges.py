"""Version ranges using the npm-style range syntax.

A range is a union (``||``) of comparator sets; a comparator set is an
intersection of whitespace-separated comparators.  Caret and tilde ranges are
expanded into primitive comparators when the range is parsed::

    ^1.2.3  ->  >=1.2.3 <2.0.0
    ^0.2.3  ->  >=0.2.3 <0.3.0
    ~1.2.3  ->  >=1.2.3 <1.3.0

As in npm, a pre-release version only satisfies a comparator set if one of the
comparators in that set names a pre-release of the same ``major.minor.patch``
(unless ``include_prerelease=True`` is passed).
"""

from __future__ import annotations

import operator
import re
from typing import Iterable, List, Optional, Union

from .version import Version

__all__ = ["Comparator", "InvalidRange", "Range", "max_satisfying", "satisfies"]

_COMPARATOR_RE = re.compile(r"\s*(?P<op><=|>=|<|>|=|\^|~)?\s*(?P<version>[^\s<>=^~|]+)")

_OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}


class InvalidRange(ValueError):
    """Raised when a range expression cannot be parsed."""


class Comparator:
    """A single primitive comparison such as ``>=1.2.3``."""

    __slots__ = ("op", "version")

    def __init__(self, op: str, version: Union[str, Version]) -> None:
        if op not in _OPERATORS:
            raise InvalidRange(f"Unknown operator {op!r}")
        self.op = op
        self.version = Version.parse(version)

    def matches(self, version: Version) -> bool:
        return _OPERATORS[self.op](version, self.version)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Comparator):
            return NotImplemented
        return (self.op, self.version) == (other.op, other.version)

    def __hash__(self) -> int:
        return hash((self.op, self.version))

    def __str__(self) -> str:
        return f"{self.op}{self.version}"

    def __repr__(self) -> str:
        return f"Comparator({self.op!r}, {str(self.version)!r})"


def _expand(op: Optional[str], version: Version) -> List[Comparator]:
    """Turn one (possibly caret/tilde) term into primitive comparators."""
    if op is None or op == "=":
        return [Comparator("=", version)]
    if op == "^":
        if version.major > 0:
            upper = version.bump_major()
        elif version.minor > 0:
            upper = Version(0, version.minor + 1, 0)
        else:
            upper = Version(0, 0, version.patch + 1)
        return [Comparator(">=", version), Comparator("<", upper)]
    if op == "~":
        return [Comparator(">=", version), Comparator("<", Version(version.major, version.minor + 1, 0))]
    return [Comparator(op, version)]


def _parse_set(text: str) -> List[Comparator]:
    text = text.strip()
    if text in ("", "*"):
        return []
    comparators: List[Comparator] = []
    position = 0
    while position < len(text):
        match = _COMPARATOR_RE.match(text, position)
        if match is None:
            raise InvalidRange(f"Invalid range: {text!r}")
        token = match.group("version")
        if token == "*":
            if match.group("op"):
                raise InvalidRange(f"Invalid range: {text!r}")
        else:
            comparators.extend(_expand(match.group("op"), Version.parse(token)))
        position = match.end()
        # Allow trailing whitespace after the last comparator.
        if not text[position:].strip():
            break
    return comparators


class Range:
    """A parsed range expression, e.g. ``Range(">=1.2.0 <2.0.0 || ^3.1.0")``."""

    def __init__(self, text: str) -> None:
        self.raw = text
        self.sets: List[List[Comparator]] = [_parse_set(part) for part in text.split("||")]

    def matches(self, version: Union[str, Version], *, include_prerelease: bool = False) -> bool:
        """Return ``True`` if ``version`` satisfies any comparator set."""
        version = Version.parse(version)
        return any(self._set_matches(comparators, version, include_prerelease) for comparators in self.sets)

    __contains__ = matches

    @staticmethod
    def _set_matches(comparators: List[Comparator], version: Version, include_prerelease: bool) -> bool:
        if not all(comparator.matches(version) for comparator in comparators):
            return False
        if version.prerelease and not include_prerelease:
            return any(
                comparator.version.prerelease and comparator.version.release == version.release
                for comparator in comparators
            )
        return True

    def __str__(self) -> str:
        return " || ".join(" ".join(str(c) for c in comparators) or "*" for comparators in self.sets)

    def __repr__(self) -> str:
        return f"Range({self.raw!r})"


def satisfies(version: Union[str, Version], range_text: Union[str, Range], *, include_prerelease: bool = False) -> bool:
    """Return ``True`` if ``version`` is inside ``range_text``."""
    rng = range_text if isinstance(range_text, Range) else Range(range_text)
    return rng.matches(version, include_prerelease=include_prerelease)


def max_satisfying(
    versions: Iterable[Union[str, Version]],
    range_text: Union[str, Range],
    *,
    include_prerelease: bool = False,
) -> Optional[Version]:
    """Return the highest version in ``versions`` that satisfies the range, or ``None``."""
    rng = range_text if isinstance(range_text, Range) else Range(range_text)
    candidates = [Version.parse(v) for v in versions]
    matching = [v for v in candidates if rng.matches(v, include_prerelease=include_prerelease)]
    return max(matching) if matching else None
