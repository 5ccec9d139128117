"""Border styles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class Style:
    """How a table's borders are drawn.

    :param vertical: column separator (without the surrounding padding).
    :param horizontal: character repeated to draw the top and bottom rules;
        empty for no top/bottom rule.
    :param header: character repeated for the rule under the header row.
    :param junction: character where rules and separators cross.
    :param outer: whether to draw the left/right borders.
    :param markdown: draw the header rule as a Markdown alignment row.
    """

    name: str
    vertical: str
    horizontal: str
    header: str
    junction: str
    outer: bool = True
    markdown: bool = False


ASCII = Style("ascii", vertical="|", horizontal="-", header="=", junction="+")
MARKDOWN = Style("markdown", vertical="|", horizontal="", header="-", junction="|", markdown=True)
PLAIN = Style("plain", vertical=" ", horizontal="", header="-", junction=" ", outer=False)

STYLES: Dict[str, Style] = {style.name: style for style in (ASCII, MARKDOWN, PLAIN)}
