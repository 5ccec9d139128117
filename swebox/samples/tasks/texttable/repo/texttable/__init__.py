"""texttable - render plain-text tables."""

from .styles import STYLES, Style
from .table import Table, tabulate
from .width import display_width, truncate

__all__ = ["STYLES", "Style", "Table", "display_width", "tabulate", "truncate"]

__version__ = "1.6.0"
