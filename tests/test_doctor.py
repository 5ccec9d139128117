"""`swebox doctor` against this machine's real engine, and against a socket that is not there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swebox.cli import app
from swebox.doctor import (
    PODMAN_START,
    Check,
    EngineProbe,
    _guarded,
    cuda_check,
    data_root_disk_check,
    default_engine_ok,
    human,
    run_checks,
)
from swebox.errors import BadInput, EngineUnavailable
from swebox.sandbox.engine import forget

MISSING = "/tmp/nonexistent-swebox.sock"
NAMES = ["docker engine", "podman engine", "disk: docker data root", "disk: working dir",
         "bubblewrap", "cgroups", "CUDA_VISIBLE_DEVICES", "versions"]


def _row(checks: list[Check], name: str) -> Check:
    (row,) = [c for c in checks if c.name == name]
    return row


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DOCKER_HOST at a socket that does not exist, with no cached client to hide that."""
    forget("docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{MISSING}")
    forget("docker")
    yield
    forget("docker")


@pytest.fixture
def no_podman(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    url = "unix:///tmp/nonexistent-swebox-podman.sock"
    monkeypatch.setenv("SWEBOX_PODMAN_HOST", url)
    forget("podman")
    yield
    forget("podman")


def test_real_engine_is_ok() -> None:
    started = time.monotonic()
    checks = run_checks()
    assert time.monotonic() - started < 10
    assert [c.name for c in checks] == NAMES
    docker = _row(checks, "docker engine")
    assert docker.status == "ok", docker.detail
    assert "server" in docker.detail and "data root" in docker.detail
    assert docker.gates_exit and not _row(checks, "podman engine").gates_exit
    assert default_engine_ok(checks)
    assert all(c.status in ("ok", "warn", "FAIL") and c.detail for c in checks)
    assert _row(checks, "versions").detail.startswith("Python ")
    assert _row(checks, "cgroups").detail.startswith(("v1 ", "v2 "))


def test_missing_socket_fails_and_names_it(no_docker: None) -> None:
    checks = run_checks()
    docker = _row(checks, "docker engine")
    assert docker.status == "FAIL"
    assert MISSING in docker.detail and "DOCKER_HOST" in docker.detail
    assert not default_engine_ok(checks)
    # The engine is down, so its data root is unknown: said, but not a second failure.
    assert _row(checks, "disk: docker data root").status == "warn"


def test_cli_exits_4_when_default_engine_is_unusable(no_docker: None) -> None:
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == EngineUnavailable.exit_code == 4, result.output
    assert "FAIL" in result.stdout
    assert "nonexistent-swebox" in result.stdout
    assert "docker is unusable" in result.stdout


def test_cli_exits_0_when_engine_is_ok() -> None:
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in NAMES:
        assert name in result.stdout


def test_entry_point_exits_4(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{MISSING}"}
    done = subprocess.run([sys.executable, "-c", "from swebox.cli import main; main()",
                           "doctor"], env=env, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr


def test_other_engine_missing_is_only_a_warning(no_docker: None) -> None:
    checks = run_checks("podman")
    docker = _row(checks, "docker engine")
    assert docker.status == "warn" and not docker.gates_exit
    assert _row(checks, "podman engine").gates_exit
    assert [c.name for c in checks][2] == "disk: podman data root"


def test_podman_missing_warns_unless_it_is_the_default(no_podman: None) -> None:
    podman = _row(run_checks(), "podman engine")
    assert podman.status == "warn"
    if shutil.which("podman"):
        assert f"`{PODMAN_START}`" in podman.detail
    else:
        assert "not installed" in podman.detail
    checks = run_checks("podman")
    assert _row(checks, "podman engine").status == "FAIL"
    assert not default_engine_ok(checks)
    result = CliRunner().invoke(app, ["doctor", "--backend", "podman"])
    assert result.exit_code == 4, result.output


@pytest.mark.parametrize(("value", "suggested"), [
    ("MIG-GPU-5b0b1c2d-7e8f-4a5b-9c0d-1e2f3a4b5c6d/1/0,"
     "MIG-GPU-5b0b1c2d-7e8f-4a5b-9c0d-1e2f3a4b5c6d/2/0", "0,1"),
    ("MIG-a1b2c3d4-e5f6-5a7b-8c9d-0e1f2a3b4c5d", "0"),
    ("MIG-1,MIG-2,MIG-3", "0,1,2"),
])
def test_mig_uuids_warn_with_the_indices_to_use(
    monkeypatch: pytest.MonkeyPatch, value: str, suggested: str
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    check = cuda_check()
    assert check.status == "warn"
    assert f"CUDA_VISIBLE_DEVICES={suggested} " in check.detail
    assert f"export CUDA_VISIBLE_DEVICES={suggested}; fi" in check.detail
    assert "vLLM" in check.detail


def test_integer_devices_and_unset_are_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert cuda_check().status == "ok"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    check = cuda_check()
    assert (check.status, check.detail) == ("ok", "not set")


def test_json_lists_every_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-GPU-5b0b1c2d/1/0")
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["check"] for r in rows] == NAMES
    assert all(set(r) == {"check", "status", "detail"} for r in rows)
    (cuda,) = [r for r in rows if r["check"] == "CUDA_VISIBLE_DEVICES"]
    assert cuda["status"] == "warn" and "CUDA_VISIBLE_DEVICES=0 " in cuda["detail"]


def test_a_crashing_check_becomes_a_fail_row() -> None:
    def broken() -> Check:
        raise RuntimeError("boom\nsecond line")

    row = _guarded("docker engine", broken, gates_exit=True)
    assert (row.status, row.detail) == ("FAIL", "check crashed: RuntimeError: boom")
    assert not default_engine_ok([row])
    assert not default_engine_ok([])


def test_data_root_not_on_this_host_is_said() -> None:
    probe = EngineProbe(backend="docker", url="tcp://elsewhere:2375",
                        info={"DockerRootDir": "/nonexistent/swebox/docker"})
    row = data_root_disk_check(probe)
    assert row.status == "warn" and "not readable on this host" in row.detail


def test_unknown_backend_is_bad_input() -> None:
    with pytest.raises(BadInput):
        run_checks("lxc")


def test_human_sizes() -> None:
    assert [human(n) for n in (512, 2048, 20 * 1024**3)] == ["512 B", "2.0 KiB", "20.0 GiB"]
