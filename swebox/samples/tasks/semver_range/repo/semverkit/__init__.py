"""semverkit - Semantic Versioning 2.0.0 parsing, comparison and ranges."""

from .ranges import Comparator, InvalidRange, Range, max_satisfying, satisfies
from .version import InvalidVersion, Version

__all__ = [
    "Comparator",
    "InvalidRange",
    "InvalidVersion",
    "Range",
    "Version",
    "max_satisfying",
    "satisfies",
]

__version__ = "0.4.1"
