"""The :class:`Table` renderer."""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional, Sequence, Union

from .styles import STYLES, Style
from .width import display_width, truncate

_ALIGN_ALIASES = {
    "l": "left", "<": "left", "left": "left",
    "r": "right", ">": "right", "right": "right",
    "c": "center", "^": "center", "center": "center",
}

AlignSpec = Union[None, str, Sequence[Optional[str]], Mapping[Union[str, int], str]]


def _parse_align(value: str) -> str:
    try:
        return _ALIGN_ALIASES[value.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown alignment {value!r}") from None


def _pad(text: str, width: int, align: str) -> str:
    """Pad ``text`` with spaces so that it fills ``width`` terminal cells."""
    fill = width - len(text)
    if fill <= 0:
        return text
    if align == "right":
        return " " * fill + text
    if align == "center":
        left = fill // 2
        return " " * left + text + " " * (fill - left)
    return text + " " * fill


class Table:
    """A plain-text table.

    :param headers: column titles; they also fix the number of columns.
    :param align: ``None`` (numbers right, everything else left), one
        alignment for all columns, a sequence with one entry per column, or a
        mapping from column name or index to alignment.  Alignments are
        ``"left"``, ``"right"``, ``"center"`` or the shorthands ``l r c`` /
        ``< > ^``.
    :param style: a :class:`~texttable.styles.Style` or the name of one of
        :data:`~texttable.styles.STYLES`.
    :param float_format: format spec applied to ``float`` cells.
    :param missing: text shown for ``None`` cells.
    :param max_width: truncate cell lines longer than this many cells.
    """

    def __init__(
        self,
        headers: Sequence[Any],
        *,
        align: AlignSpec = None,
        style: Union[str, Style] = "ascii",
        float_format: str = ".2f",
        missing: str = "",
        max_width: Optional[int] = None,
    ) -> None:
        self.headers = [str(header) for header in headers]
        if not self.headers:
            raise ValueError("a table needs at least one column")
        if isinstance(style, str):
            try:
                style = STYLES[style]
            except KeyError:
                raise ValueError(f"unknown style {style!r}; choose from {sorted(STYLES)}") from None
        self.style = style
        self.float_format = float_format
        self.missing = missing
        self.max_width = max_width
        self._align = self._normalise_align(align)
        self.rows: List[List[Any]] = []

    def _normalise_align(self, align: AlignSpec) -> List[Optional[str]]:
        count = len(self.headers)
        if align is None:
            return [None] * count
        if isinstance(align, str):
            return [_parse_align(align)] * count
        if isinstance(align, Mapping):
            result: List[Optional[str]] = [None] * count
            for key, value in align.items():
                index = self.headers.index(key) if isinstance(key, str) else key
                result[index] = _parse_align(value)
            return result
        if len(align) != count:
            raise ValueError(f"expected {count} alignments, got {len(align)}")
        return [None if value is None else _parse_align(value) for value in align]

    def add_row(self, row: Iterable[Any]) -> "Table":
        row = list(row)
        if len(row) != len(self.headers):
            raise ValueError(f"expected {len(self.headers)} cells, got {len(row)}")
        self.rows.append(row)
        return self

    def add_rows(self, rows: Iterable[Iterable[Any]]) -> "Table":
        for row in rows:
            self.add_row(row)
        return self

    # -- rendering ---------------------------------------------------------

    def _format(self, value: Any) -> str:
        if value is None:
            text = self.missing
        elif isinstance(value, float):
            text = format(value, self.float_format)
        else:
            text = str(value)
        if self.style.markdown:
            text = text.replace("|", "\\|")
        return text

    def _cell_lines(self, text: str) -> List[str]:
        lines = text.split("\n")
        if self.max_width is not None:
            lines = [truncate(line, self.max_width) for line in lines]
        return lines

    def alignments(self) -> List[str]:
        """The effective alignment of every column."""
        result = []
        for index, explicit in enumerate(self._align):
            if explicit is not None:
                result.append(explicit)
                continue
            values = [row[index] for row in self.rows if row[index] is not None]
            numeric = bool(values) and all(
                isinstance(value, (int, float)) and not isinstance(value, bool) for value in values
            )
            result.append("right" if numeric else "left")
        return result

    def _separator(self) -> str:
        vertical = self.style.vertical
        return f" {vertical} " if vertical.strip() else "  "

    def _row_lines(self, cells: List[List[str]], widths: List[int], aligns: List[str]) -> List[str]:
        height = max(len(cell) for cell in cells)
        lines = []
        for index in range(height):
            parts = [
                _pad(cell[index] if index < len(cell) else "", width, align)
                for cell, width, align in zip(cells, widths, aligns)
            ]
            line = self._separator().join(parts)
            if self.style.outer:
                line = f"{self.style.vertical} {line} {self.style.vertical}"
            lines.append(line)
        return lines

    def _rule(self, char: str, widths: List[int]) -> str:
        if not self.style.outer:
            return "  ".join(char * width for width in widths)
        junction = self.style.junction
        return junction + junction.join(char * (width + 2) for width in widths) + junction

    def _markdown_rule(self, widths: List[int], aligns: List[str]) -> str:
        segments = []
        for width, align in zip(widths, aligns):
            dashes = "-" * max(width, 3)
            if align == "left":
                segments.append(f":{dashes}-")
            elif align == "right":
                segments.append(f"-{dashes}:")
            else:
                segments.append(f":{dashes}:")
        return "|" + "|".join(segments) + "|"

    def render(self) -> str:
        """Return the table as a string (no trailing newline)."""
        header = [self._cell_lines(title) for title in self.headers]
        body = [[self._cell_lines(self._format(value)) for value in row] for row in self.rows]
        widths = [
            max(display_width(line) for cell in column for line in cell)
            for column in zip(header, *body)
        ]
        aligns = self.alignments()
        style = self.style

        lines = []
        if style.horizontal:
            lines.append(self._rule(style.horizontal, widths))
        lines.extend(self._row_lines(header, widths, aligns))
        if style.markdown:
            lines.append(self._markdown_rule(widths, aligns))
        elif style.header:
            lines.append(self._rule(style.header, widths))
        for row in body:
            lines.extend(self._row_lines(row, widths, aligns))
        if style.horizontal:
            lines.append(self._rule(style.horizontal, widths))
        if not style.outer:
            lines = [line.rstrip() for line in lines]
        return "\n".join(lines)

    __str__ = render


def tabulate(rows: Iterable[Iterable[Any]], headers: Sequence[Any], **options: Any) -> str:
    """Render ``rows`` under ``headers`` in one call; see :class:`Table`."""
    return Table(headers, **options).add_rows(rows).render()
