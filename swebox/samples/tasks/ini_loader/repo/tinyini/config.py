"""The :class:`Config` object returned by :func:`tinyini.loads`."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional

_MISSING: Any = object()

BOOLEAN_STATES = {
    "1": True, "yes": True, "true": True, "on": True,
    "0": False, "no": False, "false": False, "off": False,
}


class NoSectionError(KeyError):
    """The requested section does not exist."""


class NoOptionError(KeyError):
    """The requested option is not set in the section nor in any defaults."""


class Config:
    """Sections of string options with fallback defaults.

    :param sections: mapping of section name to ``{option: value}``.
    :param defaults: options visible from every section unless the section
        sets them itself (the file's ``[DEFAULT]`` section merged over the
        ``defaults`` passed to the loader).
    """

    def __init__(self, sections: Optional[Mapping[str, Mapping[str, str]]] = None,
                 defaults: Optional[Dict[str, str]] = None) -> None:
        self._sections: Dict[str, Dict[str, str]] = {
            name: {key.lower(): value for key, value in options.items()}
            for name, options in (sections or {}).items()
        }
        self.defaults = defaults if defaults is not None else {}

    # -- structure ---------------------------------------------------------

    def sections(self) -> List[str]:
        """Section names in file order (``DEFAULT`` is not included)."""
        return list(self._sections)

    def has_section(self, section: str) -> bool:
        return section in self._sections

    def has_option(self, section: str, key: str) -> bool:
        return self.get(section, key, fallback=None) is not None

    def add_section(self, section: str) -> None:
        if section in self._sections:
            raise ValueError(f"section {section!r} already exists")
        self._sections[section] = {}

    def set(self, section: str, key: str, value: Any) -> None:
        self._section(section)[key.lower()] = str(value)

    def _section(self, section: str) -> Dict[str, str]:
        try:
            return self._sections[section]
        except KeyError:
            raise NoSectionError(section) from None

    # -- lookups -----------------------------------------------------------

    def get(self, section: str, key: str, fallback: Any = _MISSING) -> Any:
        """Return the raw string value of ``key`` in ``section``.

        :raises NoSectionError: if the section does not exist.
        :raises NoOptionError: if the option is not set and no ``fallback``
            was given.
        """
        options = self._section(section)
        key = key.lower()
        if key in options:
            return options[key]
        if key in self.defaults:
            return self.defaults[key]
        if fallback is not _MISSING:
            return fallback
        raise NoOptionError(f"{key!r} in section {section!r}")

    def getint(self, section: str, key: str, fallback: Any = _MISSING) -> Any:
        value = self.get(section, key, fallback=None)
        if value is None:
            return self._fallback(section, key, fallback)
        return int(value)

    def getfloat(self, section: str, key: str, fallback: Any = _MISSING) -> Any:
        value = self.get(section, key, fallback=None)
        if value is None:
            return self._fallback(section, key, fallback)
        return float(value)

    def getboolean(self, section: str, key: str, fallback: Any = _MISSING) -> Any:
        value = self.get(section, key, fallback=None)
        if value is None:
            return self._fallback(section, key, fallback)
        try:
            return BOOLEAN_STATES[value.strip().lower()]
        except KeyError:
            raise ValueError(f"not a boolean: {value!r}") from None

    def getlist(self, section: str, key: str, fallback: Any = _MISSING, *, sep: str = ",") -> Any:
        """Split a value on ``sep`` (and newlines), dropping empty items."""
        value = self.get(section, key, fallback=None)
        if value is None:
            return self._fallback(section, key, fallback)
        return [item.strip() for line in value.splitlines() for item in line.split(sep) if item.strip()]

    @staticmethod
    def _fallback(section: str, key: str, fallback: Any) -> Any:
        if fallback is _MISSING:
            raise NoOptionError(f"{key.lower()!r} in section {section!r}")
        return fallback

    def items(self, section: str, *, include_defaults: bool = True) -> Dict[str, str]:
        """Options visible from ``section`` (a copy), defaults included unless told otherwise."""
        merged = dict(self.defaults) if include_defaults else {}
        merged.update(self._section(section))
        return merged

    def to_dict(self) -> Dict[str, Dict[str, str]]:
        return {name: self.items(name) for name in self._sections}

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __contains__(self, section: object) -> bool:
        return section in self._sections

    def __repr__(self) -> str:
        return f"<Config sections={self.sections()!r}>"
