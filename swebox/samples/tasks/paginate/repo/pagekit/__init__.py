"""pagekit - framework-agnostic pagination."""

from .exceptions import EmptyPage, InvalidPage, PageNotAnInteger
from .paginator import Page, Paginator
from .window import page_window

__all__ = ["EmptyPage", "InvalidPage", "Page", "PageNotAnInteger", "Paginator", "page_window"]

__version__ = "1.2.0"
