"""Limits, isolation defaults, and bad input that must fail before anything starts."""

from __future__ import annotations

import pytest

from swebox.errors import BadInput, EngineUnavailable, ImageNotFound
from swebox.sandbox import Limits, Sandbox, start_sandbox
from swebox.sandbox.engine import connect
from swebox.sandbox.models import parse_size
from tests.conftest import BASE_IMAGE, engine_of, image_for


def _swebox_containers(backend: str) -> int:
    return len(connect(backend).api.containers(all=True,  # type: ignore[arg-type]
                                               filters={"label": "swebox.owner"}))


@pytest.mark.parametrize("bad", [{"cpus": 0}, {"cpus": -1}, {"memory": "lots"},
                                 {"memory": "1k"}, {"pids": 0}, {"bogus": 1}])
def test_invalid_limits_fail_before_start(bad: dict[str, object], docker_backend: str) -> None:
    before = _swebox_containers("docker")
    with pytest.raises(BadInput) as err:
        start_sandbox(BASE_IMAGE, limits=bad)
    assert "\n" not in str(err.value)
    assert _swebox_containers("docker") == before


def test_parse_size() -> None:
    assert parse_size("512m") == 512 * 1024**2
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert parse_size(4096) == 4096
    with pytest.raises(ValueError):
        parse_size("-3g")


def test_limits_reach_the_engine(backend: str) -> None:
    limits = Limits(cpus=0.5, memory="256m", pids=64)
    with start_sandbox(image_for(backend), backend=backend, pull="never", limits=limits) as sb:
        if backend == "bwrap":
            # cgroup v1 directories of the sandbox; the execs' processes are in them
            assert sb.limits_enforced["memory"] == 256 * 1024**2  # type: ignore[attr-defined]
            assert sb.limits_enforced["pids"] == 64  # type: ignore[attr-defined]
            assert sb.limits_enforced["cpus"] == 0.5  # type: ignore[attr-defined]
            cgroups = sb.exec("cat /proc/self/cgroup").stdout
            for controller in ("memory", "pids", "cpu"):
                assert f":{controller}:/swebox-bwrap/{sb.id}" in cgroups, cgroups
        else:
            api = connect(engine_of(backend)).api  # type: ignore[arg-type]
            host = api.inspect_container(sb.id)["HostConfig"]
            assert host["NanoCpus"] == 500_000_000
            assert host["Memory"] == 256 * 1024**2
            assert host["PidsLimit"] == 64
        # pids: a fork storm hits the limit inside the sandbox
        res = sb.exec("for i in $(seq 100); do sleep 30 & done 2>&1; wait", timeout=10)
        assert "fork" in res.output.lower() or "resource" in res.output.lower()


def test_network_off_and_no_new_privileges(sandbox: Sandbox) -> None:
    ifaces = sandbox.exec("ls /sys/class/net").stdout.split()
    assert ifaces == ["lo"]
    assert "NoNewPrivs:\t1" in sandbox.exec("cat /proc/self/status").stdout


def test_network_opt_in(docker_backend: str) -> None:
    with start_sandbox(BASE_IMAGE, pull="never", limits=Limits(network=True)) as sb:
        assert "eth0" in sb.exec("ls /sys/class/net").stdout.split()


def test_unknown_image_never_pull(backend: str) -> None:
    with pytest.raises(ImageNotFound) as err:
        start_sandbox("swebox/does-not-exist:nope", backend=backend, pull="never")
    msg = str(err.value)
    assert "swebox/does-not-exist:nope" in msg and "pull" in msg and "\n" not in msg


def test_unknown_image_pull_fails_clearly(docker_backend: str) -> None:
    # A loopback registry address with nothing listening: the pull fails at once.
    with pytest.raises(ImageNotFound, match=r"127\.0\.0\.1:9/missing:v1.*pulling it failed"):
        start_sandbox("127.0.0.1:9/missing:v1", pull="missing")


def test_unreachable_engine_names_the_socket() -> None:
    with pytest.raises(EngineUnavailable, match=r"/tmp/swebox-no-such\.sock") as err:
        start_sandbox(BASE_IMAGE, engine_url="unix:///tmp/swebox-no-such.sock")
    assert "start" in str(err.value)
