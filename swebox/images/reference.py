"""Container image references: parse, normalise, compare, shorten.

Grammar (Docker's): `[registry[:port]/]path[:tag][@digest]`. The first path component is a
registry only when it contains a `.` or a `:` or is `localhost`; otherwise the image lives on
Docker Hub, where one-component paths are under `library/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from swebox.errors import BadInput

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_REGISTRY = re.compile(r"^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?)(?::\d{1,5})?$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True)
class ImageRef:
    registry: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        ref = text.strip()
        if not ref:
            raise BadInput("empty image reference")
        digest = None
        if "@" in ref:
            ref, digest = ref.split("@", 1)
            if not _DIGEST.match(digest):
                raise BadInput(f"bad digest in image reference {text!r}")
        registry = None
        first, sep, rest = ref.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            if not _REGISTRY.match(first):
                raise BadInput(f"bad registry {first!r} in image reference {text!r}",
                               hint="use host[:port]/path[:tag]")
            registry, ref = first, rest
        tag = None
        last_slash = ref.rfind("/")
        colon = ref.rfind(":")
        if colon > last_slash:
            ref, tag = ref[:colon], ref[colon + 1 :]
            if not _TAG.match(tag):
                raise BadInput(f"bad tag {tag!r} in image reference {text!r}")
        parts = ref.split("/")
        for part in parts:
            if not _COMPONENT.match(part):
                raise BadInput(f"bad image reference {text!r}: path component {part!r} must be "
                               "lower-case letters, digits and separators")
        return cls(registry=registry, path=ref, tag=tag, digest=digest)

    @property
    def repository(self) -> str:
        """The last path component (`randovania_randovania`)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        """Everything before the repository (`org/team`), or '' for none."""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def domain(self) -> str:
        return self.registry or DOCKER_HUB

    def normalized(self) -> str:
        """Fully qualified: `docker.io/library/python:latest`."""
        path = self.path
        if self.registry is None and "/" not in path:
            path = f"library/{path}"
        out = f"{self.domain}/{path}"
        if self.tag or not self.digest:
            out += f":{self.tag or 'latest'}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def short(self, keep_namespace: bool = False) -> str:
        """A short local name without the registry: `repository:tag` (or with its namespace)."""
        name = self.path if keep_namespace else self.repository
        out = f"{name}:{self.tag or 'latest'}"
        return out + (f"@{self.digest}" if self.digest and not self.tag else "")

    def same_image(self, other: ImageRef) -> bool:
        return self.normalized() == other.normalized()

    def __str__(self) -> str:
        out = f"{self.registry}/{self.path}" if self.registry else self.path
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out
