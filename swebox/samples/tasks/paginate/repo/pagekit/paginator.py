"""The :class:`Paginator` and :class:`Page` classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Iterator, List, Optional

from .exceptions import EmptyPage, PageNotAnInteger
from .window import page_window


class Paginator:
    """Split a sequence into numbered pages.

    :param items: anything supporting ``len()`` and slicing (a list, a tuple,
        a lazy query object, ...).
    :param per_page: maximum number of items on a page.
    :param orphans: if the last page would have ``orphans`` items or fewer,
        they are added to the previous page instead of forming a page of their
        own.
    :param allow_empty_first_page: whether page 1 may be requested when there
        are no items at all.
    """

    def __init__(self, items: Any, per_page: int, *, orphans: int = 0, allow_empty_first_page: bool = True) -> None:
        per_page = int(per_page)
        orphans = int(orphans)
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        if not 0 <= orphans < per_page:
            raise ValueError("orphans must be >= 0 and smaller than per_page")
        self.items = items
        self.per_page = per_page
        self.orphans = orphans
        self.allow_empty_first_page = allow_empty_first_page
        self._count: Optional[int] = None

    @property
    def count(self) -> int:
        """Total number of items across all pages."""
        if self._count is None:
            self._count = len(self.items)
        return self._count

    @property
    def num_pages(self) -> int:
        """Total number of pages."""
        if self.count == 0 and not self.allow_empty_first_page:
            return 0
        hits = max(1, self.count - self.orphans)
        return hits // self.per_page + 1

    @property
    def page_range(self) -> range:
        """1-based range of valid page numbers, handy for templates."""
        return range(1, self.num_pages + 1)

    def validate_number(self, number: Any) -> int:
        """Return ``number`` as an ``int`` if it names an existing page.

        :raises PageNotAnInteger: if ``number`` is not an integer.
        :raises EmptyPage: if ``number`` is out of range.
        """
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(f"Page number {number!r} is not an integer") from None
        if number < 1:
            raise EmptyPage("Page number is less than 1")
        if number > self.num_pages:
            if number == 1 and self.allow_empty_first_page:
                return number
            raise EmptyPage(f"Page {number} contains no results")
        return number

    def page(self, number: Any) -> "Page":
        """Return the :class:`Page` with the given 1-based number."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return Page(self.items[bottom:top], number, self)

    def get_page(self, number: Any) -> "Page":
        """Like :meth:`page`, but never raises for bad user input.

        Non-integers give the first page and out-of-range numbers give the
        last page, which is what you usually want for a ``?page=`` parameter.
        """
        try:
            number = self.validate_number(number)
        except PageNotAnInteger:
            number = 1
        except EmptyPage:
            number = max(self.num_pages, 1)
        return self.page(number)

    def window(self, number: Any, *, radius: int = 2, edges: int = 1) -> List[Optional[int]]:
        """Page numbers to show around page ``number``; see :func:`page_window`."""
        return page_window(self.validate_number(number), self.num_pages, radius=radius, edges=edges)

    def __iter__(self) -> Iterator["Page"]:
        for number in self.page_range:
            yield self.page(number)

    def __repr__(self) -> str:
        return f"<Paginator count={self.count} per_page={self.per_page} orphans={self.orphans}>"


class Page(Sequence):
    """One page of results; behaves like a read-only sequence of its items."""

    def __init__(self, items: Any, number: int, paginator: Paginator) -> None:
        self.items = items
        self.number = number
        self.paginator = paginator

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        # Materialise lazy sequences once so repeated indexing is cheap.
        if not isinstance(self.items, list):
            self.items = list(self.items)
        return self.items[index]

    def has_next(self) -> bool:
        return self.number < self.paginator.num_pages

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()

    def next_page_number(self) -> int:
        return self.paginator.validate_number(self.number + 1)

    def previous_page_number(self) -> int:
        return self.paginator.validate_number(self.number - 1)

    def start_index(self) -> int:
        """1-based index (in the whole sequence) of the first item on this page."""
        if self.paginator.count == 0:
            return 0
        return (self.number - 1) * self.paginator.per_page + 1

    def end_index(self) -> int:
        """1-based index (in the whole sequence) of the last item on this page."""
        if self.number == self.paginator.num_pages:
            return self.paginator.count
        return self.number * self.paginator.per_page

    def __repr__(self) -> str:
        return f"<Page {self.number} of {self.paginator.num_pages}>"
