"""Derived images: a task image plus a recipe (a tool, an agent server), built once and reused.

Seed 001 builds an agent-server image on demand for each task image; done right that means:
- the derived image's tag is a content hash of the base image's id and the recipe (its steps
  and the bytes of every file it copies), so a changed base or recipe gets a new image and an
  unchanged one is found again by name, with no build;
- one build per tag: concurrent requests for the same tag, in threads or other processes, wait
  for the one build (a lock per tag: a thread lock, then a lock file under the state dir) and
  then find the image present;
- builds are confined to `build_cpus` CPUs (the build containers share a cpuset of that many
  CPUs, the engine's last ones, however many builds run), so builds cannot starve sandboxes;
- a derived image enters the ledger, so the disk budget can prune it like a fetched one.

A recipe is TOML:

    name = "agent-server"
    run = ["pip install my-agent-server==1.2"]      # shell steps, in order
    env = { AGENT_PORT = "60000" }
    files = { "/opt/agent/start.sh" = "start.sh" }  # image path = file beside the recipe
    workdir = ""                                    # keep the base image's when empty
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

from docker.errors import APIError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swebox.atomic import file_lock
from swebox.errors import BadInput, ImageNotFound, SandboxError
from swebox.images import ledger
from swebox.sandbox.engine import connect, engine_url, find_image
from swebox.sandbox.models import BackendName

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

REPOSITORY = "swebox-derived"
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lower-case name, part of the derived image's name")
    run: list[str] = Field(default_factory=list, description="shell steps, in order")
    env: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict,
                                  description="absolute image path -> file beside the recipe")
    workdir: str = ""
    root: Path = Field(default=Path("."), exclude=True, description="where `files` are read")

    def check(self) -> Recipe:
        if not _NAME.match(self.name):
            raise BadInput(f"recipe name {self.name!r} must be lower-case letters, digits, "
                           "'.', '_' or '-'")
        for key in self.env:
            if not _ENV_KEY.match(key):
                raise BadInput(f"recipe {self.name}: bad environment variable name {key!r}")
        for dest, src in self.files.items():
            if not dest.startswith("/"):
                raise BadInput(f"recipe {self.name}: file destination {dest!r} must be absolute")
            if not (self.root / src).is_file():
                raise BadInput(f"recipe {self.name}: file {self.root / src} not found",
                               hint="paths in `files` are relative to the recipe file")
        return self

    def digest(self, base_id: str) -> str:
        """sha256 over the base image id, the steps and every copied file's bytes."""
        h = hashlib.sha256()
        spec = self.model_dump(mode="json", exclude={"root"})
        h.update(json.dumps({"base": base_id, "recipe": spec}, sort_keys=True).encode())
        for dest in sorted(self.files):
            h.update(dest.encode() + b"\0")
            with open(self.root / self.files[dest], "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as e:
        raise BadInput(f"cannot read recipe {p}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{p}: not valid TOML: {e}") from e
    try:
        return Recipe.model_validate({**data, "root": p.resolve().parent}).check()
    except ValidationError as e:
        err = e.errors()[0]
        raise BadInput(f"{p}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}",
                       hint="a recipe has name, run, env, files and workdir") from e


class Derived(BaseModel):
    base: str
    image: str
    built: bool  # False: the tag existed (or another request built it meanwhile)
    seconds: float = 0.0


def _dockerfile(base: str, recipe: Recipe, digest: str) -> str:
    lines = [f"FROM {base}"]
    for i, dest in enumerate(sorted(recipe.files)):
        lines.append(f"COPY files/{i} {json.dumps(dest)}")
    for key, value in recipe.env.items():
        lines.append(f"ENV {key}={json.dumps(value)}")
    lines += [f"RUN {step}" for step in recipe.run]
    if recipe.workdir:
        lines.append(f"WORKDIR {recipe.workdir}")
    lines.append(f'LABEL swebox.recipe="{recipe.name}" swebox.recipe.digest="{digest}"')
    return "\n".join(lines) + "\n"


def _context(dockerfile: str, recipe: Recipe) -> io.BytesIO:
    """The build context: the Dockerfile and the recipe's files (small by nature)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for i, dest in enumerate(sorted(recipe.files)):
            tar.add(str(recipe.root / recipe.files[dest]), arcname=f"files/{i}")
    buf.seek(0)
    return buf


def _resolve_base(backend: BackendName, base: str) -> tuple[str, str]:
    """(name the engine knows the base by, its image id)."""
    found = find_image(backend, base)
    if found is None:
        raise ImageNotFound(f"base image {base} is not present in {backend}",
                            hint="fetch it first: swebox images fetch")
    return found[0], str(found[1]["Id"])


def _cpuset(backend: BackendName, build_cpus: int | None) -> str | None:
    if not build_cpus:
        return None
    ncpu = int(connect(backend).api.info().get("NCPU") or 1)
    n = max(1, min(build_cpus, ncpu))
    return f"{ncpu - n}-{ncpu - 1}" if n > 1 else str(ncpu - 1)


def derive(base: str, recipe: Recipe, *, backend: BackendName = "docker",
           build_cpus: int | None = None, timeout: float = 3600) -> Derived:
    """The derived image of `base` by `recipe`: found by its content-hash tag, else built."""
    import time

    start = time.monotonic()
    base_name, base_id = _resolve_base(backend, base)
    digest = recipe.digest(base_id)
    tag = f"{REPOSITORY}/{recipe.name}:{digest[:24]}"
    if find_image(backend, tag) is not None:
        return Derived(base=base, image=tag, built=False)
    with file_lock(ledger.state_dir() / "locks" / f"build-{digest[:24]}.lock"):
        if find_image(backend, tag) is not None:  # another request built it meanwhile
            return Derived(base=base, image=tag, built=False,
                           seconds=round(time.monotonic() - start, 3))
        info = _build(backend, base_name, recipe, digest, tag, build_cpus, timeout)
    ledger.record(engine_url(backend), info["Id"], info.get("RepoTags") or [tag],
                  int(info.get("Size") or 0), "built")
    return Derived(base=base, image=tag, built=True, seconds=round(time.monotonic() - start, 3))


def _build(backend: BackendName, base: str, recipe: Recipe, digest: str, tag: str,
           build_cpus: int | None, timeout: float) -> dict[str, Any]:
    """Build `tag`; returns the engine's inspect record of the new image."""
    api = connect(backend).api
    limits: dict[str, str] = {}
    cpuset = _cpuset(backend, build_cpus)
    if cpuset:
        limits["cpusetcpus"] = cpuset
    context = _context(_dockerfile(base, recipe, digest), recipe)
    tail: list[str] = []
    # Podman's compat API would file a registry-less tag under docker.io; local names live
    # under localhost/ there (see engine.local_names).
    name = f"localhost/{tag}" if backend == "podman" else tag
    try:
        for message in api.build(fileobj=context, custom_context=True, tag=name, rm=True,
                                 forcerm=True, pull=False, decode=True, timeout=int(timeout),
                                 container_limits=limits or None):  # type: ignore[arg-type]
            if "error" in message:
                raise SandboxError(f"building {tag} from {base} failed: "
                                   f"{' '.join(str(message['error']).split())[:300]}",
                                   hint=f"last output: {' | '.join(tail[-3:])[:300]}")
            text = str(message.get("stream", "")).strip()
            if text:
                tail.append(text)
    except APIError as e:
        raise SandboxError(f"building {tag} from {base} failed: {e.explanation or e}") from e
    found = find_image(backend, tag)
    if found is None:
        raise SandboxError(f"building {tag} from {base} produced no image",
                           hint=f"last output: {' | '.join(tail[-3:])[:300]}")
    return found[1]
