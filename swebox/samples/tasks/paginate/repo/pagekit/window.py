"""Compute the list of page links to display in a pager widget."""

from typing import List, Optional


def page_window(current: int, total: int, *, radius: int = 2, edges: int = 1) -> List[Optional[int]]:
    """Return the page numbers to display around ``current``.

    The first and last ``edges`` pages are always shown, as are the pages
    within ``radius`` of ``current``.  Runs of hidden pages are represented by
    a single ``None`` (render it as an ellipsis).  A gap that would hide just
    one page shows that page instead, since an ellipsis would take as much
    room as the number itself.

    >>> page_window(10, 20)
    [1, None, 8, 9, 10, 11, 12, None, 20]
    >>> page_window(2, 5)
    [1, 2, 3, 4, 5]
    """
    if total < 1:
        return []
    if not 1 <= current <= total:
        raise ValueError(f"current page {current} is outside 1..{total}")
    if radius < 0 or edges < 0:
        raise ValueError("radius and edges must be non-negative")

    shown = set(range(1, min(edges, total) + 1))
    shown.update(range(max(total - edges + 1, 1), total + 1))
    shown.update(range(max(current - radius, 1), min(current + radius, total) + 1))

    result: List[Optional[int]] = []
    previous = 0
    for number in sorted(shown):
        gap = number - previous - 1
        if gap == 1:
            result.append(number - 1)
        elif gap > 1:
            result.append(None)
        result.append(number)
        previous = number
    trailing = total - previous
    if trailing == 1:
        result.append(total)
    elif trailing > 1:
        result.append(None)
    return result
