"""Read-only binds on every backend: the sandbox sees the host files at the target path, cannot
change them (not from a command, not through the file API), the host copy stays as it was, and
a fork of the sandbox has the same binds. (The remote backend refuses binds: they name host
paths.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from swebox.errors import BadInput, SweboxError
from swebox.sandbox import start_sandbox
from tests.conftest import _require, image_for

LOCAL = ["docker", "podman", "bwrap"]  # binds name host paths: the remote backend has none


@pytest.fixture(params=LOCAL)
def backend(request: pytest.FixtureRequest) -> str:
    _require(request.param)
    return str(request.param)


@pytest.fixture
def tool_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tool"
    (d / "bin").mkdir(parents=True)
    (d / "bin" / "hello").write_text("#!/bin/sh\necho hello from the bind\n")
    (d / "bin" / "hello").chmod(0o755)
    (d / "data.txt").write_text("original\n")
    return d


def test_bind_is_seen_and_read_only(backend: str, tool_dir: Path) -> None:
    with start_sandbox(image_for(backend), backend=backend, workdir="/root", pull="never",
                       binds={str(tool_dir): "/opt/swebox-test/tool"}) as sb:
        assert sb.exec("/opt/swebox-test/tool/bin/hello", timeout=30).stdout == \
            "hello from the bind\n"
        assert sb.read_file("/opt/swebox-test/tool/data.txt") == b"original\n"
        for cmd in ("echo changed > /opt/swebox-test/tool/data.txt",
                    "touch /opt/swebox-test/tool/new",
                    "rm -f /opt/swebox-test/tool/data.txt",
                    "chmod 777 /opt/swebox-test/tool/data.txt",
                    "mv /opt/swebox-test/tool/bin /opt/swebox-test/tool/b2"):
            res = sb.exec(cmd, timeout=30)
            assert res.exit_code != 0, f"{cmd!r} succeeded in a read-only bind"
        with pytest.raises(SweboxError):
            sb.write_file("/opt/swebox-test/tool/data.txt", "via the file API\n")
        # Root's remount cannot make it writable either (no CAP_SYS_ADMIN in a sandbox).
        sb.exec("mount -o remount,rw /opt/swebox-test/tool", timeout=30)
        assert sb.exec("echo x > /opt/swebox-test/tool/data.txt", timeout=30).exit_code != 0
        assert sb.exec("cat /opt/swebox-test/tool/data.txt", timeout=30).stdout == "original\n"
        # The rest of the sandbox is as writable as ever.
        assert sb.exec("echo ok > /opt/swebox-test/beside && cat /opt/swebox-test/beside",
                       timeout=30).stdout == "ok\n"
        [fork] = sb.fork(1)
        with fork:
            assert fork.config.binds == {str(tool_dir): "/opt/swebox-test/tool"}
            assert fork.exec("/opt/swebox-test/tool/bin/hello", timeout=30).stdout == \
                "hello from the bind\n"
            assert fork.exec("cat /opt/swebox-test/beside", timeout=30).stdout == "ok\n"
            assert fork.exec("touch /opt/swebox-test/tool/new", timeout=30).exit_code != 0
    assert (tool_dir / "data.txt").read_text() == "original\n"
    assert sorted(p.name for p in tool_dir.iterdir()) == ["bin", "data.txt"]


def test_missing_bind_source_is_refused(backend: str, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        start_sandbox(image_for(backend), backend=backend, pull="never",
                      binds={str(tmp_path / "absent"): "/opt/absent"})
    assert not (tmp_path / "absent").exists()
