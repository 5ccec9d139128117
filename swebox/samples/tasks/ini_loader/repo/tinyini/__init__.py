"""tinyini - a small, forgiving INI-style configuration loader."""

from .config import Config, NoOptionError, NoSectionError
from .loader import load, loads
from .parser import ParseError
from .writer import dump, dumps

__all__ = [
    "Config",
    "NoOptionError",
    "NoSectionError",
    "ParseError",
    "dump",
    "dumps",
    "load",
    "loads",
]

__version__ = "2.1.3"
