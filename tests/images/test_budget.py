"""The disk budget on real engines: only images swebox loaded are pruned, least recently used
first, never one a container uses; too little disk is refused before anything is loaded."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from swebox.errors import BadInput, DiskFull
from swebox.images import budget, ledger
from swebox.images.supply import fetch_image, push
from swebox.sandbox import start_sandbox
from swebox.sandbox.engine import connect, engine_url
from swebox.tasks.resolver import ImageRules, RewriteRule
from tests.conftest import BUSYBOX_IMAGE, _require
from tests.images.test_supply import _drop, _has

NAMES = ("budget.test/lab/old_one:v1", "budget.test/lab/new_one:v1")
LOCAL = ("old_one:v1", "new_one:v1")


def test_parse_size() -> None:
    assert budget.parse_size("50G") == 50 << 30
    assert budget.parse_size("1.5T") == int(1.5 * (1 << 40))
    assert budget.parse_size("512MiB") == 512 << 20
    assert budget.parse_size("0") == 0
    with pytest.raises(BadInput, match="not a size"):
        budget.parse_size("lots")


def _build(backend: str, name: str, seed: str) -> None:
    """A small image whose top layer (8 MiB of random bytes) no other image shares."""
    dockerfile = (f"FROM {BUSYBOX_IMAGE}\n"
                  f"RUN dd if=/dev/urandom of=/blob-{seed} bs=1048576 count=8 2>/dev/null\n")
    api = connect(backend).api  # type: ignore[arg-type]
    for _ in api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=name, rm=True,
                       decode=True, pull=False):
        pass


@pytest.fixture(params=["docker", "podman"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ImageRules]]:
    """Two distinct images saved to a file:// store, then fetched back through swebox."""
    backend = str(request.param)
    _require(backend, BUSYBOX_IMAGE)
    rules = ImageRules(rewrite=[RewriteRule(match="budget.test/*", local="{repository}:{tag}",
                                            store=f"file://{tmp_path}/{{repository}}.tar")])
    _drop(backend, *NAMES, *LOCAL)
    for i, name in enumerate(NAMES):
        _build(backend, name, f"{i}-{tmp_path.name}")
        push(name, rules.store_path(name) or "", backend=backend)  # type: ignore[arg-type]
        _drop(backend, name)
    for name in NAMES:
        assert fetch_image(name, rules, backend=backend,  # type: ignore[arg-type]
                           drop_long_name=True, keep_free=0).action == "loaded"
    yield backend, rules
    _drop(backend, *NAMES, *LOCAL)


def test_fetch_records_what_it_loaded(loaded: tuple[str, ImageRules]) -> None:
    backend, _ = loaded
    entries = ledger.entries(engine_url(backend))  # type: ignore[arg-type]
    names = {n.removeprefix("localhost/") for e in entries for n in e.names}
    assert set(LOCAL) <= names
    assert all(e.how == "loaded" and e.size > 8 << 20 for e in entries
               if set(e.names) & {*LOCAL, *(f"localhost/{n}" for n in LOCAL)})


def test_prune_removes_least_recently_used_swebox_image_only(
        loaded: tuple[str, ImageRules]) -> None:
    backend, _ = loaded
    # the older image is used by a sandbox: the newer one becomes least recently used
    with start_sandbox(LOCAL[0], backend=backend, pull="never", workdir="/") as sb:  # type: ignore[arg-type]
        assert sb.exec("ls /").exit_code == 0
    _, free = budget.free_bytes(backend)  # type: ignore[arg-type]
    report = budget.prune(backend, free + 1)  # type: ignore[arg-type]
    assert [r.names for r in report.removed] and len(report.removed) == 1
    assert not _has(backend, LOCAL[1]) and _has(backend, LOCAL[0])
    assert _has(backend, BUSYBOX_IMAGE)  # not loaded by swebox: never a candidate
    assert all(LOCAL[1] not in " ".join(e.names)
               for e in ledger.entries(engine_url(backend)))  # type: ignore[arg-type]


def test_prune_keeps_images_that_containers_use(loaded: tuple[str, ImageRules]) -> None:
    backend, _ = loaded
    api = connect(backend).api  # type: ignore[arg-type]
    held = [api.create_container(name, command=["true"])["Id"]
            for name in (f"localhost/{n}" if backend == "podman" else n for n in LOCAL)]
    try:
        report = budget.prune(backend, 1 << 60, dry_run=False)  # type: ignore[arg-type]
        assert report.removed == [] and report.kept_in_use >= 2
        assert all(_has(backend, n) for n in LOCAL)
    finally:
        for cid in held:
            api.remove_container(cid, force=True)


def test_dry_run_removes_nothing(loaded: tuple[str, ImageRules]) -> None:
    backend, _ = loaded
    report = budget.prune(backend, 1 << 60, dry_run=True)  # type: ignore[arg-type]
    assert len(report.removed) >= 2
    assert all(_has(backend, n) for n in LOCAL)


def test_too_little_disk_is_refused_before_loading(loaded: tuple[str, ImageRules]) -> None:
    backend, rules = loaded
    other = "budget.test/lab/third:v1"
    tar = Path((rules.store_path(NAMES[0]) or "").removeprefix("file://"))
    shutil.copy(tar, tar.with_name("third.tar"))
    with pytest.raises(DiskFull, match="too little disk for") as err:
        fetch_image(other, rules, backend=backend, keep_free=1 << 60)  # type: ignore[arg-type]
    assert "\n" not in str(err.value) and "--keep-free" in str(err.value)
    assert not _has(backend, other) and not _has(backend, "third:v1")


def test_concurrent_loads_reserve_their_need(docker_backend: str) -> None:
    _, free = budget.free_bytes("docker")
    half = free // 2 + (1 << 30)  # a GiB of slack: other processes share this disk
    with budget.room("docker", half, 0, what="first"), pytest.raises(DiskFull), \
            budget.room("docker", half, 0, what="second"):
        pass
    with budget.room("docker", half, 0, what="after the first finished"):
        pass


def test_cli_prune_dry_run_lists_swebox_images(loaded: tuple[str, ImageRules]) -> None:
    import subprocess
    import sys

    backend, _ = loaded
    done = subprocess.run([sys.executable, "-m", "swebox.cli", "images", "prune", "-b", backend,
                           "--keep-free", "1P", "--dry-run"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "would remove" in done.stdout and "old_one" in done.stdout
    assert all(_has(backend, n) for n in LOCAL)
    bad = subprocess.run([sys.executable, "-m", "swebox.cli", "images", "prune", "-b", backend,
                          "--keep-free", "lots"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a size" in bad.stderr
