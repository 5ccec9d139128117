"""Extracted image filesystems for the engine-free `bwrap` backend, cached on disk.

`rootfs_for(image)` returns a directory holding the image's filesystem, extracted once into
`<state dir>/rootfs/<key>` and reused after. `<key>` is the sha256 of the image config in
canonical JSON (sorted keys, no spaces): every source carries the same config, so the key does
not depend on where the image came from, and the config names the layers (`rootfs.diff_ids`),
so it names the filesystem. The config itself is written beside the directory
(`<key>.config.json`): the sandbox reads `Env` and `User` from it, as an engine would.

Where the image comes from, in order:

1. `source`, when given: a docker-archive or OCI tarball, an OCI layout directory, or a
   `docker-archive:`/`oci:`/`oci-archive:` URI (`swebox.oci.archive.open_source`);
2. unless `pull="always"`: a local container engine (Docker, then Podman) that already holds the
   image, through `docker save` streamed to a temporary file. Nothing leaves the machine, and it
   is the only place images built locally (like the test images) exist. Engines are optional:
   one that is not running is skipped;
3. unless `pull="always"`: what an earlier registry fetch of the same reference extracted;
4. unless `pull="never"`: the registry (`swebox.oci.registry.RegistrySource`).

Concurrent calls (threads or processes) for one image extract it once: a lock file per key,
and `extract_to` renames a complete tree into place, so a half-extracted rootfs is never seen.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from swebox.atomic import atomic_text, file_lock
from swebox.errors import BadInput, DiskFull, EngineUnavailable, ImageNotFound
from swebox.oci.archive import open_source
from swebox.oci.extract import extract_to
from swebox.oci.image import ImageSource

__all__ = ["cache_dir", "config_key", "image_config", "install", "rootfs_for"]

CONFIG_SUFFIX = ".config.json"


def cache_dir() -> Path:
    from swebox.images.ledger import state_dir

    return state_dir() / "rootfs"


def config_key(config: dict[str, Any]) -> str:
    """The cache key of an image: sha256 of its config in canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def config_path(rootfs: Path) -> Path:
    return rootfs.with_name(rootfs.name + CONFIG_SUFFIX)


def image_config(rootfs: str | Path) -> dict[str, Any]:
    """The image config saved beside an extracted rootfs (`{}` for a bare directory)."""
    try:
        data = json.loads(config_path(Path(rootfs)).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def install(source: ImageSource, dest: str | Path) -> Path:
    """Extract `source` into `dest` unless it is already there; its config goes beside it.

    Ownership is kept when running as root (a rootfs needs root-owned /etc, /tmp...). Safe to
    call from several processes at once: one extracts, the others wait and reuse."""
    dest = Path(dest)
    with file_lock(dest.with_name(f".{dest.name}.lock")):
        if dest.is_dir():
            return dest
        # The config first: a reader that sees the directory always finds its config.
        with atomic_text(config_path(dest)) as f:
            json.dump(source.config(), f)
        extract_to(source, dest, preserve_owner=True)
    return dest


def _alias(kind: str, name: str) -> Path:
    return cache_dir() / kind / hashlib.sha256(name.encode()).hexdigest()


def _read_alias(path: Path) -> Path | None:
    try:
        key = path.read_text().strip()
    except OSError:
        return None
    rootfs = cache_dir() / key
    return rootfs if key and rootfs.is_dir() else None


def _write_alias(path: Path, rootfs: Path) -> None:
    with atomic_text(path) as f:
        f.write(rootfs.name + "\n")


def _install_from(source: ImageSource) -> Path:
    return install(source, cache_dir() / config_key(source.config()))


def _from_source(image: str, source: str) -> Path:
    try:
        opened = open_source(source)
    except BadInput:
        # Several images in one archive: pick ours by name (its error lists what is there).
        opened = open_source(source, image)
    with opened:
        return _install_from(opened)


def _from_engine(image: str) -> Path | None:
    """The rootfs of `image` as a local engine holds it, or None when no engine has it."""
    # The sandbox layer's engine discovery (DOCKER_HOST, Podman sockets); imported lazily so
    # that the bwrap backend never needs docker-py to talk to anything.
    from docker.errors import DockerException

    from swebox.sandbox.engine import connect, find_image

    for backend in ("docker", "podman"):
        try:
            found = find_image(backend, image)
        except (EngineUnavailable, DockerException):
            continue
        if found is None:
            continue
        name, info = found
        image_id = str(info["Id"]).removeprefix("sha256:")
        alias = _alias("engine-ids", image_id)
        rootfs = _read_alias(alias)
        if rootfs is not None:
            return rootfs
        with file_lock(cache_dir() / f".engine-{image_id[:32]}.lock"):
            rootfs = _read_alias(alias)
            if rootfs is None:
                rootfs = _save_and_install(connect(backend).api,
                                           name, backend)
                _write_alias(alias, rootfs)
        return rootfs
    return None


def _save_and_install(api: Any, name: str, backend: str) -> Path:
    """`docker save` into a temporary file beside the cache (the archive must be seekable to
    be read in place), extracted, then deleted."""
    from docker.errors import DockerException

    cache_dir().mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".save-", suffix=".tar", dir=cache_dir())
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in api.get_image(name):
                out.write(chunk)
        with open_source(tmp) as source:
            return _install_from(source)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"no space left in {cache_dir()} to save {name} from {backend}",
                           hint="free disk space or point SWEBOX_STATE_DIR elsewhere") from e
        raise
    except DockerException as e:
        raise ImageNotFound(f"{backend} could not save {name}: {str(e).splitlines()[0][:200]}",
                            hint=f"check `{backend} image inspect {name}`") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _from_registry(image: str) -> Path:
    from swebox.oci.registry import RegistrySource

    with RegistrySource(image) as source:
        rootfs = _install_from(source)
    _write_alias(_alias("refs", image), rootfs)
    return rootfs


def rootfs_for(image: str, *, source: str | None = None, pull: str = "missing") -> Path:
    """A directory holding `image`'s filesystem, extracted once and cached (see the module
    docstring for where it comes from). `pull`: "missing" (default), "never" (no registry),
    "always" (ask the registry first)."""
    if source is not None:
        return _from_source(image, source)
    if pull != "always":
        found = _from_engine(image)
        if found is None:
            found = _read_alias(_alias("refs", image))
        if found is not None:
            return found
        if pull == "never":
            raise ImageNotFound(
                f"image {image} is not in the rootfs cache and no local engine holds it",
                hint="pull it into docker or podman, pass rootfs_source=TARBALL, give a rootfs "
                     "directory as the image, or allow the registry with pull='missing'")
    return _from_registry(image)
