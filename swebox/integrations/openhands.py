"""OpenHands' evaluation runners on swebox-supplied images, with no patch to OpenHands.

OpenHands' `run_infer` does not read an image column: it computes each instance's image name
(evaluation/benchmarks/swe_bench/run_infer.py and multi_swe_bench/run_infer.py,
`get_instance_docker_image`) from `EVAL_DOCKER_IMAGE_PREFIX` and the instance:

- swe_bench, and multi_swe_bench with LANGUAGE=python:
  `<prefix>/sweb.eval.x86_64.<instance_id with "__" -> "_s_">`, lower-cased
  (swe_bench's prefix defaults to docker.io/xingyaoww/; multi_swe_bench's to mswebench);
- swe_bench with the official images: `<prefix>/sweb.eval.x86_64.<repo>_1776_<name>:latest`;
- multi_swe_bench otherwise: `<prefix>/<repo with "/" -> "_m_">:pr-<last "-" part of the id>`.

So instead of rewriting `get_instance_docker_image` to read `image_storage_uri` (seed 000),
give the image swebox loaded (the task's local name, after `swebox images fetch`) the name
OpenHands will ask for: `openhands_image(task, ...)` computes it, `tag_for_openhands` tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swebox.errors import BadInput, ImageNotFound
from swebox.tasks.model import Task

BENCHMARKS = ("swe_bench", "swe_bench_official", "multi_swe_bench")
DEFAULT_PREFIX = {"swe_bench": "docker.io/xingyaoww", "swe_bench_official": "docker.io/swebench",
                  "multi_swe_bench": "mswebench"}


def openhands_image(task: Task, benchmark: str = "swe_bench", prefix: str | None = None,
                    language: str | None = None) -> str:
    """The image name OpenHands' run_infer computes for `task` (see the module docstring)."""
    if benchmark not in BENCHMARKS:
        raise BadInput(f"unknown OpenHands benchmark {benchmark!r}",
                       hint=f"one of {', '.join(BENCHMARKS)}")
    pre = (prefix if prefix is not None else DEFAULT_PREFIX[benchmark]).rstrip("/")
    iid = task.instance_id
    lang = (language or task.language or "python").lower()
    if benchmark == "swe_bench_official":
        repo, _, name = iid.partition("__")
        return f"{pre}/sweb.eval.x86_64.{repo}_1776_{name}:latest".lower()
    if benchmark == "swe_bench" or lang == "python":
        return f"{pre}/sweb.eval.x86_64.{iid.replace('__', '_s_')}".lower()
    return f"{pre}/{task.repo.lower().replace('/', '_m_')}:pr-{iid.split('-')[-1]}"


@dataclass
class Tagged:
    instance_id: str
    source: str
    target: str
    error: str | None = None


def tag_for_openhands(tasks: Iterable[Task], *, benchmark: str = "swe_bench",
                      prefix: str | None = None, language: str | None = None,
                      backend: str = "docker") -> list[Tagged]:
    """Tag each task's local image under OpenHands' name for it; a task whose image is not
    in the engine is reported, the others go on."""
    from swebox.sandbox.engine import connect, find_image

    api = connect(backend).api  # type: ignore[arg-type]
    out = []
    for task in tasks:
        source = task.run_image or ""
        target = openhands_image(task, benchmark, prefix, language)
        try:
            found = find_image(backend, source) if source else None  # type: ignore[arg-type]
            if found is None:
                raise ImageNotFound(f"{task.instance_id}: image {source or '(none)'} is not in "
                                    f"{backend}", hint="load it with `swebox images fetch`")
            repo, _, tag = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] \
                else (target, "", "latest")
            api.tag(found[0], repo, tag or "latest")
            out.append(Tagged(task.instance_id, found[0], target))
        except Exception as e:  # one task's failure must not stop the others
            out.append(Tagged(task.instance_id, source, target, error=str(e)))
    return out
