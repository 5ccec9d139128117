"""Streaming `docker save` tarballs from object stores into the engine, on real engines.

The image stands in for seed 000's client images: the BusyBox test image tagged under an
unreachable registry's long name, saved to a store, the long name removed, then fetched back
through a rewrite rule to its short local name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from swebox.errors import ImageNotFound, SandboxError
from swebox.images.supply import fetch_image, push
from swebox.sandbox.engine import connect, local_names
from swebox.tasks.resolver import ImageRules, RewriteRule
from tests.conftest import BUSYBOX_IMAGE, _require

LONG = "vmvm-registry.fbinfra.net/repomate_image_activ_pytest/randovania_randovania:bd8e6fa8"
SHORT = "randovania_randovania:bd8e6fa8"


def _rules(prefix: str) -> ImageRules:
    return ImageRules(rewrite=[RewriteRule(match="vmvm-registry.fbinfra.net/*",
                                           local="{repository}:{tag}",
                                           store=prefix + "/{repository}-{tag}.tar")])


def _drop(backend: str, *names: str) -> None:
    api = connect(backend).api  # type: ignore[arg-type]
    for name in names:
        for candidate in local_names(backend, name):  # type: ignore[arg-type]
            try:
                api.remove_image(candidate)
            except Exception:
                pass


def _has(backend: str, name: str) -> bool:
    for candidate in local_names(backend, name):  # type: ignore[arg-type]
        try:
            connect(backend).api.inspect_image(candidate)  # type: ignore[arg-type]
            return True
        except Exception:
            continue
    return False


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    backend = str(request.param)
    _require(backend, BUSYBOX_IMAGE)
    _drop(backend, LONG, SHORT)
    yield backend
    _drop(backend, LONG, SHORT)


@pytest.fixture
def saved(engine: str, tmp_path: Path) -> tuple[str, ImageRules, Path]:
    """The long-named image saved to a file:// store, and no longer in the engine."""
    api = connect(engine).api  # type: ignore[arg-type]
    api.tag(BUSYBOX_IMAGE, LONG.rsplit(":", 1)[0], LONG.rsplit(":", 1)[1])
    store = tmp_path / "store"
    rules = _rules(f"file://{store}")
    size = push(LONG, rules.store_path(LONG) or "", backend=engine)  # type: ignore[arg-type]
    assert size > 100_000
    _drop(engine, LONG)
    assert not _has(engine, LONG)
    return engine, rules, store / "randovania_randovania-bd8e6fa8.tar"


def test_fetch_streams_the_tarball_and_tags_the_short_name(saved: tuple[str, ImageRules,
                                                                        Path]) -> None:
    backend, rules, tar = saved
    result = fetch_image(LONG, rules, backend=backend, drop_long_name=True)  # type: ignore[arg-type]
    assert result.action == "loaded" and result.local == SHORT
    assert result.bytes == tar.stat().st_size and result.source and "file://" in result.source
    assert _has(backend, SHORT) and not _has(backend, LONG)
    again = fetch_image(LONG, rules, backend=backend)  # type: ignore[arg-type]
    assert again.action == "present"
    # the short local name starts sandboxes on this engine
    from swebox.sandbox import start_sandbox

    with start_sandbox(SHORT, backend=backend, pull="never", workdir="/") as sb:
        assert sb.exec("echo ok").stdout == "ok\n"


def test_truncated_tarball_is_refused_and_leaves_nothing(saved: tuple[str, ImageRules,
                                                                      Path]) -> None:
    backend, rules, tar = saved
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(SandboxError) as err:
        fetch_image(LONG, rules, backend=backend)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
    assert not _has(backend, LONG) and not _has(backend, SHORT)


def test_tarball_with_another_image_is_refused(saved: tuple[str, ImageRules, Path],
                                               tmp_path: Path) -> None:
    backend, _, _ = saved
    other = "vmvm-registry.fbinfra.net/x/other_repo:v1"
    wrong = ImageRules(rewrite=[RewriteRule(match="*", local="{repository}:{tag}",
                                            store=f"file://{tmp_path}/store/"
                                            "randovania_randovania-bd8e6fa8.tar")])
    with pytest.raises(SandboxError, match="holds"):
        fetch_image(other, wrong, backend=backend)  # type: ignore[arg-type]
    assert not _has(backend, LONG)  # what the wrong tarball loaded was removed again


def test_missing_object_and_unreachable_registry(engine: str, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound, match="nope"):
        fetch_image(LONG, _rules(f"file://{tmp_path}/nope"), backend=engine)  # type: ignore[arg-type]
    with pytest.raises(ImageNotFound, match="cannot pull"):
        fetch_image("127.0.0.1:9/absent/image:v1", ImageRules(), backend=engine)  # type: ignore[arg-type]


def test_cli_fetch_writes_tasks_with_local_names(saved: tuple[str, ImageRules, Path],
                                                 tmp_path: Path) -> None:
    backend, _, tar = saved
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rewrite]]\nmatch = "vmvm-registry.fbinfra.net/*"\n'
                     'local = "{repository}:{tag}"\n'
                     f'store = "file://{tar.parent}/{{repository}}-{{tag}}.tar"\n')
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("instance_id,repo,base_commit,version,image_storage_uri,problem_statement\n"
                     f"1001,randovania/randovania,bd8e6fa8,1001,{LONG},It breaks\n")
    out = tmp_path / "tasks.csv"
    done = subprocess.run([sys.executable, "-m", "swebox.cli", "images", "fetch", "--tasks",
                           str(sheet), "--rules", str(rules), "--backend", backend,
                           "--drop-long-name", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout and "1 ready, 0 failed" in done.stdout
    assert out.read_text() == sheet.read_text().replace(LONG, SHORT)  # seed 000, step 4
    assert _has(backend, SHORT)
    # Re-running resumes: present, and --to writes another format keeping both names.
    jsonl = tmp_path / "tasks.jsonl"
    again = subprocess.run([sys.executable, "-m", "swebox.cli", "images", "fetch", "--tasks",
                            str(sheet), "--rules", str(rules), "--backend", backend,
                            "-o", str(jsonl), "--to", "swebox"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "present" in again.stdout
    (task,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert task["local_image"] == SHORT and task["image"] == LONG


def test_s3_round_trip_through_moto(engine: str, s3_endpoint: str, bucket: str) -> None:
    """seed 000's pipeline end to end against a real S3-compatible server on loopback."""
    api = connect(engine).api  # type: ignore[arg-type]
    api.tag(BUSYBOX_IMAGE, LONG.rsplit(":", 1)[0], LONG.rsplit(":", 1)[1])
    rules = _rules(f"s3://{bucket}/velora-files/images")
    uri = rules.store_path(LONG) or ""
    assert uri == f"s3://{bucket}/velora-files/images/randovania_randovania-bd8e6fa8.tar"
    size = push(LONG, uri, backend=engine, endpoint=s3_endpoint)  # type: ignore[arg-type]
    _drop(engine, LONG)
    result = fetch_image(LONG, rules, backend=engine, endpoint=s3_endpoint,  # type: ignore[arg-type]
                         drop_long_name=True)
    assert result.action == "loaded" and result.bytes == size
    assert _has(engine, SHORT) and not _has(engine, LONG)
