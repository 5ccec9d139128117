"""Any image with /bin/sh works: the whole contract on an image holding only a static BusyBox
(no bash, no coreutils, no git), on every backend. Nothing is injected and nothing is built."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from swebox.sandbox import Sandbox, start_sandbox
from tests.conftest import BACKENDS, BUSYBOX_IMAGE, _require, image_for


@pytest.fixture(params=BACKENDS)
def plain(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    _require(request.param, BUSYBOX_IMAGE)
    with start_sandbox(image_for(request.param, BUSYBOX_IMAGE), backend=request.param,
                       workdir="/root", pull="never") as sb:
        yield sb


def test_image_has_no_bash(plain: Sandbox) -> None:
    assert plain.exec("command -v bash || echo none").stdout == "none\n"


def test_exec_timeout_kills_group(plain: Sandbox) -> None:
    res = plain.exec("trap '' TERM; (sleep 304 &); sleep 304", timeout=1)
    assert res.timed_out and res.exit_code == 124
    deadline = time.monotonic() + 3
    while "sleep 304" in plain.exec("ps -o args").stdout:
        assert time.monotonic() < deadline, "timed-out processes survived"
        time.sleep(0.2)


def test_session_on_plain_sh(plain: Sandbox) -> None:
    with plain.shell() as sh:
        sh.run("cd /tmp; export V=7; f() { echo f$V; }")
        assert sh.run("pwd; f").output == "/tmp\nf7\n"
        assert sh.run("echo 'broken").exit_code != 0
        res = sh.run("sleep 305", timeout=1)
        assert res.timed_out
        assert sh.run("echo $PWD").output == "/tmp\n"


def test_files_and_lease(plain: Sandbox) -> None:
    plain.write_file("/opt/x/data.bin", b"\x00\x01busybox")
    assert plain.read_file("/opt/x/data.bin") == b"\x00\x01busybox"
    expiry = plain.renew(120)
    assert plain.exec("cat /dev/shm/.swebox-lease").stdout.strip() == f"{expiry:.0f}"


def test_lease_expires_on_plain_image(plain: Sandbox) -> None:
    plain.renew(2)
    deadline = time.monotonic() + 20
    while True:
        try:
            plain.exec("true")
        except Exception:
            break
        assert time.monotonic() < deadline, "sandbox outlived its lease"
        time.sleep(0.5)
