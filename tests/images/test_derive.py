"""Derived images on real engines: content-hash tags, reuse, one build per tag, CPU limits."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from swebox.errors import BadInput, ImageNotFound, SandboxError
from swebox.images import ledger
from swebox.images.derive import Recipe, derive, load_recipe
from swebox.sandbox import start_sandbox
from swebox.sandbox.engine import connect, engine_url, local_names
from tests.conftest import BUSYBOX_IMAGE, _require


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    (tmp_path / "hello.sh").write_text("#!/bin/sh\necho hello from $GREETER\n")
    (tmp_path / "recipe.toml").write_text(
        f'name = "greeter-{tmp_path.name.lower().replace("_", "-")}"\n'
        'run = ["chmod +x /opt/hello.sh", "nproc > /build-nproc"]\n'
        'env = { GREETER = "swebox" }\n'
        'files = { "/opt/hello.sh" = "hello.sh" }\n'
        'workdir = "/opt"\n')
    return tmp_path / "recipe.toml"


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    backend = str(request.param)
    _require(backend, BUSYBOX_IMAGE)
    made: list[str] = []
    request.node.made = made
    yield backend
    api = connect(backend).api  # type: ignore[arg-type]
    for name in made:
        for candidate in local_names(backend, name):  # type: ignore[arg-type]
            try:
                api.remove_image(candidate)
            except Exception:
                pass


def test_build_then_reuse(engine: str, recipe_file: Path,
                          request: pytest.FixtureRequest) -> None:
    recipe = load_recipe(recipe_file)
    first = derive(BUSYBOX_IMAGE, recipe, backend=engine, build_cpus=1)  # type: ignore[arg-type]
    request.node.made.append(first.image)
    assert first.built and first.image.startswith(f"swebox-derived/{recipe.name}:")
    again = derive(BUSYBOX_IMAGE, recipe, backend=engine)  # type: ignore[arg-type]
    assert again.image == first.image and not again.built
    with start_sandbox(first.image, backend=engine, pull="never") as sb:  # type: ignore[arg-type]
        assert sb.exec("/opt/hello.sh").stdout == "hello from swebox\n"
        assert sb.exec("cat /build-nproc").stdout == "1\n"  # built on one CPU
    info = connect(engine).api.inspect_image(first.image if engine == "docker"  # type: ignore[arg-type]
                                             else f"localhost/{first.image}")
    assert info["Config"]["WorkingDir"] == "/opt"
    assert info["Config"]["Labels"]["swebox.recipe"] == recipe.name
    entries = ledger.entries(engine_url(engine))  # type: ignore[arg-type]
    assert any(e.how == "built" and any(first.image in n for n in e.names) for e in entries)


def test_tag_follows_recipe_and_file_contents(engine: str, recipe_file: Path,
                                              request: pytest.FixtureRequest) -> None:
    recipe = load_recipe(recipe_file)
    base_id = connect(engine).api.inspect_image(  # type: ignore[arg-type]
        local_names(engine, BUSYBOX_IMAGE)[-1])["Id"]  # type: ignore[arg-type]
    one = recipe.digest(base_id)
    assert recipe.digest(base_id) == one
    assert recipe.model_copy(update={"run": [*recipe.run, "true"]}).digest(base_id) != one
    assert recipe.digest("sha256:" + "0" * 64) != one
    (recipe_file.parent / "hello.sh").write_text("#!/bin/sh\necho changed\n")
    assert load_recipe(recipe_file).digest(base_id) != one


def test_concurrent_requests_share_one_build(engine: str, recipe_file: Path,
                                             request: pytest.FixtureRequest) -> None:
    recipe = load_recipe(recipe_file)
    results: list[object] = []

    def ask() -> None:
        results.append(derive(BUSYBOX_IMAGE, recipe, backend=engine))  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    images = {r.image for r in results}  # type: ignore[attr-defined]
    request.node.made.extend(images)
    assert len(images) == 1 and sum(r.built for r in results) == 1  # type: ignore[attr-defined]


def test_cli_build_writes_tasks_with_derived_names(docker_backend: str, recipe_file: Path,
                                                   tmp_path: Path) -> None:
    import json

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"schema_version": 1, "source_format": "swebox",
                                 "instance_id": "t1", "repo": "o/r", "base_commit": "abc",
                                 "image": BUSYBOX_IMAGE, "problem_statement": "x"}) + "\n")
    out = tmp_path / "derived.jsonl"
    done = subprocess.run([sys.executable, "-m", "swebox.cli", "images", "build", "--tasks",
                           str(tasks), "--recipe", str(recipe_file), "--build-cpus", "1",
                           "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    image = json.loads(out.read_text())["image"]
    assert image.startswith("swebox-derived/greeter-")
    try:
        assert "built" in done.stdout
    finally:
        connect("docker").api.remove_image(image)


def test_bad_recipes(tmp_path: Path, docker_backend: str) -> None:
    bad = tmp_path / "r.toml"
    bad.write_text('name = "Has Spaces"\n')
    with pytest.raises(BadInput, match="lower-case"):
        load_recipe(bad)
    bad.write_text('name = "x"\nfiles = { "/a" = "missing.sh" }\n')
    with pytest.raises(BadInput, match="not found"):
        load_recipe(bad)
    bad.write_text('name = "x"\nsteps = ["true"]\n')
    with pytest.raises(BadInput, match="steps"):
        load_recipe(bad)
    with pytest.raises(ImageNotFound, match="fetch it first"):
        derive("absent/base:v1", Recipe(name="x"), backend="docker")
    failing = Recipe(name=f"fails-{tmp_path.name.lower().replace('_', '-')}",
                     run=["echo about to fail", "exit 3"])
    with pytest.raises(SandboxError, match="failed") as err:
        derive(BUSYBOX_IMAGE, failing, backend="docker")
    assert "\n" not in str(err.value)


def test_two_processes_share_one_build(docker_backend: str, tmp_path: Path) -> None:
    recipe = tmp_path / "slow.toml"
    recipe.write_text(f'name = "slow-{tmp_path.name.lower().replace("_", "-")}"\n'
                      'run = ["sleep 2", "touch /built"]\n')
    code = ("import sys; from swebox.images.derive import derive, load_recipe; "
            f"d = derive({BUSYBOX_IMAGE!r}, load_recipe({str(recipe)!r})); "
            "print(d.built, d.image)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outs) == ["False", "True"] and outs[0][1] == outs[1][1]
    connect("docker").api.remove_image(outs[0][1])
