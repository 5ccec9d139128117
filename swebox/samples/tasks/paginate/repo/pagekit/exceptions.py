"""Exceptions raised when a requested page cannot be served."""


class InvalidPage(Exception):
    """Base class for all page lookup errors."""


class PageNotAnInteger(InvalidPage):
    """The requested page number is not an integer (e.g. ``"abc"`` or ``2.5``)."""


class EmptyPage(InvalidPage):
    """The requested page number is out of range and would contain no items."""
