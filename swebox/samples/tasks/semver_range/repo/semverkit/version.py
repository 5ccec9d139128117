"""The :class:`Version` type and the Semantic Versioning 2.0.0 grammar."""

from __future__ import annotations

import functools
import re
from typing import Tuple, Union

__all__ = ["InvalidVersion", "Version"]

# Grammar from https://semver.org/#backusnaur-form-grammar-for-valid-semver-versions
_NUMERIC = r"0|[1-9][0-9]*"
_IDENTIFIER = r"[0-9A-Za-z]+"
_DOT_SEPARATED = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*"

_VERSION_RE = re.compile(
    rf"v?(?P<major>{_NUMERIC})\.(?P<minor>{_NUMERIC})\.(?P<patch>{_NUMERIC})"
    rf"(?:-(?P<prerelease>{_DOT_SEPARATED}))?"
    rf"(?:\+(?P<build>{_DOT_SEPARATED}))?",
    re.ASCII,
)

Identifier = Union[int, str]


class InvalidVersion(ValueError):
    """Raised when a string is not a valid semantic version."""


def _parse_prerelease(text: str, original: str) -> Tuple[Identifier, ...]:
    identifiers = []
    for part in text.split("."):
        if part.isdigit():
            if len(part) > 1 and part.startswith("0"):
                raise InvalidVersion(
                    f"Invalid version {original!r}: numeric pre-release "
                    f"identifier {part!r} has a leading zero"
                )
            identifiers.append(int(part))
        else:
            identifiers.append(part)
    return tuple(identifiers)


def _compare_prerelease(left: Tuple[Identifier, ...], right: Tuple[Identifier, ...]) -> int:
    """Compare two pre-release tuples following semver section 11.4."""
    if left == right:
        return 0
    # A version without a pre-release has higher precedence than one with it.
    if not left:
        return 1
    if not right:
        return -1
    for a, b in zip(left, right):
        if a == b:
            continue
        a_is_num, b_is_num = isinstance(a, int), isinstance(b, int)
        if a_is_num and b_is_num:
            return -1 if a < b else 1
        if a_is_num != b_is_num:
            # Numeric identifiers always have lower precedence.
            return -1 if a_is_num else 1
        return -1 if a < b else 1
    return -1 if len(left) < len(right) else 1


@functools.total_ordering
class Version:
    """An immutable semantic version.

    Build metadata is preserved for display but, as required by the
    specification, ignored for precedence and equality.
    """

    __slots__ = ("major", "minor", "patch", "prerelease", "build")

    def __init__(
        self,
        major: int,
        minor: int = 0,
        patch: int = 0,
        prerelease: Tuple[Identifier, ...] = (),
        build: Tuple[str, ...] = (),
    ) -> None:
        if min(major, minor, patch) < 0:
            raise InvalidVersion("version numbers must be non-negative")
        object.__setattr__(self, "major", major)
        object.__setattr__(self, "minor", minor)
        object.__setattr__(self, "patch", patch)
        object.__setattr__(self, "prerelease", tuple(prerelease))
        object.__setattr__(self, "build", tuple(build))

    def __setattr__(self, name, value):
        raise AttributeError("Version objects are immutable")

    @classmethod
    def parse(cls, text: str) -> "Version":
        """Parse ``text`` (optionally prefixed with ``v``) into a :class:`Version`.

        :raises InvalidVersion: if ``text`` is not a valid semantic version.
        """
        if isinstance(text, Version):
            return text
        candidate = text.strip()
        match = _VERSION_RE.fullmatch(candidate)
        if match is None:
            raise InvalidVersion(f"Invalid version string: {text!r}")
        prerelease = match.group("prerelease")
        build = match.group("build")
        return cls(
            int(match.group("major")),
            int(match.group("minor")),
            int(match.group("patch")),
            _parse_prerelease(prerelease, text) if prerelease else (),
            tuple(build.split(".")) if build else (),
        )

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def release(self) -> Tuple[int, int, int]:
        """The ``(major, minor, patch)`` triple."""
        return (self.major, self.minor, self.patch)

    def bump_major(self) -> "Version":
        return Version(self.major + 1, 0, 0)

    def bump_minor(self) -> "Version":
        return Version(self.major, self.minor + 1, 0)

    def bump_patch(self) -> "Version":
        # 1.2.3-rc.1 -> 1.2.3: finishing a pre-release keeps the same triple.
        if self.prerelease:
            return Version(self.major, self.minor, self.patch)
        return Version(self.major, self.minor, self.patch + 1)

    def _cmp(self, other: "Version") -> int:
        if self.release != other.release:
            return -1 if self.release < other.release else 1
        return _compare_prerelease(self.prerelease, other.prerelease)

    @staticmethod
    def _coerce(other):
        if isinstance(other, Version):
            return other
        if isinstance(other, str):
            return Version.parse(other)
        return NotImplemented

    def __eq__(self, other) -> bool:
        other = self._coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return self._cmp(other) == 0

    def __lt__(self, other) -> bool:
        other = self._coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return self._cmp(other) < 0

    def __hash__(self) -> int:
        return hash((self.release, self.prerelease))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for part in self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"
