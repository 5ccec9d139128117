"""Plain data types of the sandbox layer: limits, configuration, results.

Configs are pydantic models with a `backend` discriminator-style field so that they round-trip
through JSON/YAML; they are validated before anything starts (an invalid limit never reaches
the engine).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from swebox.errors import BadInput

# "bwrap" needs no engine: bubblewrap over an extracted rootfs (swebox.sandbox.bwrap).
# "remote": a swebox runtime server runs the sandbox (swebox.sandbox.remote).
BackendName = Literal["docker", "podman", "bwrap", "remote"]
PullPolicy = Literal["missing", "never", "always"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a human size such as '512m', '2G', '1.5GiB'."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string like '2g'")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"cannot read size {value!r}: use bytes or a suffix k/m/g/t, e.g. '2g'")
    n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if n <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return n


class Limits(BaseModel):
    """Resource limits of one sandbox. Network is off unless asked for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: float | None = Field(default=None, gt=0, le=1024)
    memory: int | None = Field(default=None, description="bytes; accepts '2g' style strings")
    pids: int | None = Field(default=None, ge=8)
    network: bool = False

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: object) -> int | None:
        if v is None:
            return None
        if isinstance(v, (int, str)):
            n = parse_size(v)
            if n < 6 * 1024**2:
                raise ValueError("memory limit below 6 MiB cannot start a container")
            return n
        raise ValueError("memory must be bytes or a string like '2g'")


class SandboxConfig(BaseModel):
    """How a sandbox starts: image, backend, limits, lease. Round-trips through JSON."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1)
    backend: BackendName = "docker"
    workdir: str = "/testbed"
    env: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    lease: float = Field(default=3600.0, gt=0, description="seconds until the sandbox expires")
    labels: dict[str, str] = Field(default_factory=dict)
    task_id: str | None = None
    pull: PullPolicy = "missing"
    output_limit: int = Field(default=8 * 1024**2, ge=1024, description="bytes kept per exec")
    engine_url: str | None = Field(default=None, description="engine socket; default: discover")
    user: str | None = None
    base_commit: str | None = Field(default=None, description="what diff() compares against")
    # bwrap only. `image` is then a rootfs directory or an image reference; a reference is
    # extracted once into the rootfs cache, from `rootfs_source` when given (a docker-archive
    # or OCI tarball/layout path, or a docker-archive:/oci:/oci-archive: URI).
    rootfs_source: str | None = Field(default=None, description="bwrap: tarball/layout to "
                                      "extract the image from")
    # bwrap only: host directory -> absolute path in the sandbox. Each is overlaid, never bound:
    # the sandbox sees the directory and writes to a private layer, the host copy never changes.
    mounts: dict[str, str] = Field(default_factory=dict, description="bwrap: host dir -> "
                                   "path in the sandbox (copy-on-write overlay)")

    # docker/podman/bwrap: host directory -> absolute path in the sandbox, bound read-only
    # (e.g. a portable tool the image lacks). The sandbox cannot change the host copy.
    binds: dict[str, str] = Field(default_factory=dict, description="host dir -> path in the "
                                  "sandbox (read-only bind)")
    # remote only: the runtime server's base URL (default $SWEBOX_SERVER_URL) and its API key
    # (default $SWEBOX_API_KEY). The key is never serialized or shown.
    url: str | None = Field(default=None, description="remote: the server's base URL")
    api_key: str | None = Field(default=None, exclude=True, repr=False)

    @field_validator("workdir")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"workdir must be an absolute path, got {v!r}")
        return v

    @field_validator("mounts", "binds")
    @classmethod
    def _mounts(cls, v: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for host, inside in v.items():
            if not host.startswith("/") or not inside.startswith("/"):
                raise ValueError(f"mount {host!r} -> {inside!r}: both paths must be absolute")
            norm = "/" + "/".join(c for c in inside.split("/") if c not in ("", "."))
            if ".." in norm.split("/") or norm == "/":
                raise ValueError(f"mount target {inside!r} must be a directory below /")
            if norm in seen:
                raise ValueError(f"two mounts on {norm}")
            seen.add(norm)
        return v

    @model_validator(mode="after")
    def _bwrap_only(self) -> SandboxConfig:
        if self.backend != "bwrap" and (self.mounts or self.rootfs_source):
            raise ValueError("mounts and rootfs_source need backend 'bwrap'")
        if self.backend != "remote" and (self.url or self.api_key):
            raise ValueError("url and api_key need backend 'remote'")
        if self.backend == "remote" and self.binds:
            raise ValueError("binds name host directories: a remote server does not take them")
        return self


def make_config(**kwargs: object) -> SandboxConfig:
    """Build a SandboxConfig, turning validation errors into one-line `BadInput`."""
    try:
        return SandboxConfig.model_validate(kwargs)
    except ValidationError as e:
        raise BadInput(_one_line(e), hint="fix the value and retry; nothing was started") from e


def make_limits(**kwargs: object) -> Limits:
    try:
        return Limits.model_validate({k: v for k, v in kwargs.items() if v is not None})
    except ValidationError as e:
        raise BadInput(_one_line(e), hint="fix the limit and retry; nothing was started") from e


def _one_line(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "value"
        parts.append(f"invalid {loc}: {err['msg']}")
    return "; ".join(parts)


class ExecResult(BaseModel):
    """Outcome of one command. `output` is stdout and stderr interleaved as they arrived."""

    exit_code: int
    output: str = ""
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class PatchResult(BaseModel):
    """Outcome of `apply_patch`: whether it applied and which method did it."""

    applied: bool
    method: str | None = None
    output: str = ""
    attempts: list[str] = Field(default_factory=list)
