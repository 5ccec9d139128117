"""Measuring text in terminal cells rather than code points.

East Asian wide and fullwidth characters (CJK ideographs, kana, fullwidth
Latin, ...) occupy two cells in a terminal; combining marks and other
zero-width characters occupy none.  ``len()`` gets both wrong.
"""

from __future__ import annotations

import unicodedata

_ZERO_WIDTH_CATEGORIES = {"Mn", "Me", "Cf"}


def char_width(char: str) -> int:
    """Number of terminal cells occupied by a single character."""
    if unicodedata.category(char) in _ZERO_WIDTH_CATEGORIES:
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def display_width(text: str) -> int:
    """Number of terminal cells occupied by ``text`` (a single line)."""
    return sum(char_width(char) for char in text)


def truncate(text: str, width: int, placeholder: str = "\u2026") -> str:
    """Shorten ``text`` to at most ``width`` cells, ending with ``placeholder``.

    >>> truncate("hello world", 8)
    'hello w\u2026'
    """
    if display_width(text) <= width:
        return text
    budget = width - display_width(placeholder)
    if budget < 0:
        raise ValueError("width is too small for the placeholder")
    kept = []
    used = 0
    for char in text:
        cells = char_width(char)
        if used + cells > budget:
            break
        kept.append(char)
        used += cells
    return "".join(kept) + placeholder
