"""Builds the sample tasks' images on top of the base image, on Docker or Podman.

The build context (a Dockerfile plus the task's `repo/`) is streamed to the engine's build API;
the Dockerfile commits the tree with a fixed identity and dates and fails the build if the
commit differs from the task's recorded `base_commit`. An image is rebuilt only when its
content label differs from the task's current content hash.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

from docker.errors import APIError, BuildError
from docker.errors import ImageNotFound as DockerImageNotFound

from swebox.errors import ImageNotFound, SandboxError
from swebox.samples import DEFAULT_BASE_IMAGE, SampleTask
from swebox.sandbox.engine import connect
from swebox.sandbox.models import BackendName

LABEL_SAMPLE = "swebox.sample"
LABEL_DIGEST = "swebox.sample.digest"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "swebox", "GIT_AUTHOR_EMAIL": "samples@swebox.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "swebox", "GIT_COMMITTER_EMAIL": "samples@swebox.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}


def dockerfile(task: SampleTask, base_image: str, digest: str) -> str:
    env = " ".join(f"{k}='{v}'" for k, v in GIT_ENV.items())
    return f"""FROM {base_image}
COPY repo/ /testbed/
WORKDIR /testbed
RUN git config --global --add safe.directory /testbed \\
 && git -c init.defaultBranch=main init -q . && git add -A \\
 && {env} git -c commit.gpgsign=false commit -q -m "Base commit" \\
 && test "$(git rev-parse HEAD)" = "{task.base_commit}" \\
 || (echo "base commit differs from task.json: $(git rev-parse HEAD)" >&2; exit 1)
LABEL {LABEL_SAMPLE}="{task.name}" {LABEL_DIGEST}="{digest}" swebox.instance_id="{task.instance_id}"
CMD ["/bin/bash"]
"""


def _context(task: SampleTask, base_image: str, digest: str) -> bytes:
    """The build context as a tar: a few KiB of source, so building it in memory is fine."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile(task, base_image, digest).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        repo = task.path / "repo"
        for path in sorted(repo.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            info = tar.gettarinfo(str(path), arcname="repo/" + str(path.relative_to(repo)))
            info.mode = 0o644  # git records only the executable bit; samples have none
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


def _base_id(api: object, base_image: str, backend: str) -> str:
    try:
        return str(api.inspect_image(base_image)["Id"])  # type: ignore[attr-defined]
    except (DockerImageNotFound, APIError) as e:
        raise ImageNotFound(f"base image {base_image} is not present in {backend}",
                            hint="build it with `bash scripts/build-base-image.sh` "
                            "(needs debootstrap, as root)") from e


def image_is_current(task: SampleTask, backend: BackendName = "docker",
                     base_image: str = DEFAULT_BASE_IMAGE) -> bool:
    api = connect(backend).api
    digest = task.digest(_base_id(api, base_image, backend))
    try:
        labels = api.inspect_image(task.image)["Config"].get("Labels") or {}
    except (DockerImageNotFound, APIError):
        return False
    return bool(labels.get(LABEL_DIGEST) == digest)


def build(task: SampleTask, backend: BackendName = "docker",
          base_image: str = DEFAULT_BASE_IMAGE, force: bool = False) -> bool:
    """Build the task's image if missing or stale; True when a build ran."""
    if not force and image_is_current(task, backend, base_image):
        return False
    api = connect(backend).api
    digest = task.digest(_base_id(api, base_image, backend))
    build_context(api, task.image, _context(task, base_image, digest))
    if not image_is_current(task, backend, base_image):
        raise SandboxError(f"building {task.image} did not produce a labelled image")
    return True


def build_context(api: object, tag: str, context: bytes) -> None:
    """Build `context` (a tar with a Dockerfile) as `tag`, offline; SandboxError with the
    engine's message on failure."""
    log: list[str] = []
    try:
        for chunk in _decode(api.build(  # type: ignore[attr-defined]
                fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True,
                forcerm=True, network_mode="none", pull=False)):
            if "error" in chunk:
                raise SandboxError(f"building {tag} failed: {chunk['error'].strip()}",
                                   hint=f"build output: {''.join(log)[-300:]}")
            if "stream" in chunk:
                log.append(chunk["stream"])
    except (APIError, BuildError) as e:
        raise SandboxError(f"building {tag} failed: {e}") from e


def _decode(stream: Iterator[bytes]) -> Iterator[dict[str, str]]:
    """The build API streams JSON objects, not always one per chunk."""
    buf = b""
    dec = json.JSONDecoder()
    for chunk in stream:
        buf += chunk
        text = buf.decode(errors="replace")
        pos = 0
        while pos < len(text):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, end = dec.raw_decode(text, pos)
            except ValueError:
                break
            yield obj
            pos = end
        buf = text[pos:].encode()


def build_all(tasks: list[SampleTask], backend: BackendName = "docker",
              base_image: str = DEFAULT_BASE_IMAGE, force: bool = False) -> dict[str, bool]:
    return {t.name: build(t, backend, base_image, force) for t in tasks}


