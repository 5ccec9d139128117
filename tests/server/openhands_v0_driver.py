"""OpenHands' own V0 RemoteRuntime client against a swebox server, run in the openhands-ai 1.6.0
venv (Python 3.12) by tests/server/test_openhands_v0.py; it checks nothing itself and prints
one JSON document of what the client got back, for the test to check.

    SWEBOX_URL=http://127.0.0.1:PORT SWEBOX_KEY=sbx_... IMAGE=swebox/testbase:bookworm \\
        /opt/swebox/venvs/openhands-1.6.0/bin/python tests/server/openhands_v0_driver.py
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any


def main() -> None:
    from openhands.core.config import OpenHandsConfig, SandboxConfig
    from openhands.core.setup import create_runtime
    from openhands.events.action import (
        BrowseURLAction,
        CmdRunAction,
        FileEditAction,
        FileReadAction,
        FileWriteAction,
        IPythonRunCellAction,
    )
    from openhands.events.event import FileEditSource, FileReadSource
    from openhands.events.serialization import event_to_dict

    sandbox = SandboxConfig(
        remote_runtime_api_url=os.environ["SWEBOX_URL"], api_key=os.environ["SWEBOX_KEY"],
        runtime_container_image=os.environ["IMAGE"], remote_runtime_init_timeout=60,
        remote_runtime_api_timeout=60, keep_runtime_alive=False, timeout=60)
    config = OpenHandsConfig(runtime="remote", sandbox=sandbox, file_store="memory")
    runtime = create_runtime(config, sid="swebox-" + secrets.token_hex(6), headless_mode=True)
    out: dict[str, Any] = {"steps": {}}

    def step(name: str, action: Any) -> None:
        obs = runtime.run_action(action)
        d = event_to_dict(obs)
        d["class"] = type(obs).__name__
        if hasattr(obs, "to_agent_observation"):
            d["agent_text"] = obs.to_agent_observation()
        out["steps"][name] = d

    def run(name: str, command: str, timeout: float | None = None, **kw: Any) -> None:
        action = CmdRunAction(command=command, **kw)
        if timeout is not None:
            action.set_hard_timeout(timeout)
        step(name, action)

    t0 = time.monotonic()
    asyncio.run(runtime.connect())
    out["connect_seconds"] = time.monotonic() - t0
    out["runtime_id"], out["url"] = runtime.runtime_id, runtime.runtime_url

    run("cd", "mkdir -p /tmp/d && cd /tmp/d")
    run("pwd", "pwd")
    run("export", "export FOO=bar-baz")
    run("echo_env", "echo $FOO")
    run("exit3", "echo out; echo err >&2; (exit 3)")
    run("bg", "sleep 0.1 &")
    run("empty", "")
    run("hidden", "echo secret", hidden=True)
    run("timeout", "echo started; sleep 30", timeout=2)
    run("after_timeout", "echo after")
    step("write", FileWriteAction(path="/workspace/a.txt", content="line1\nline2"))
    step("read", FileReadAction(path="/workspace/a.txt"))
    step("read_range", FileReadAction(path="/workspace/a.txt", start=1, end=2))
    step("read_missing", FileReadAction(path="/workspace/nope.txt"))
    step("edit", FileEditAction(path="/workspace/a.txt", command="str_replace", old_str="line2",
                                new_str="LINE2", impl_source=FileEditSource.OH_ACI))
    step("edit_nomatch", FileEditAction(path="/workspace/a.txt", command="str_replace",
                                        old_str="zzz", new_str="y",
                                        impl_source=FileEditSource.OH_ACI))
    step("create", FileEditAction(path="/workspace/pkg/new.py", command="create",
                                  file_text="x = 1\n", impl_source=FileEditSource.OH_ACI))
    step("insert", FileEditAction(path="/workspace/pkg/new.py", command="insert",
                                  insert_line=1, new_str="y = 2",
                                  impl_source=FileEditSource.OH_ACI))
    step("view", FileReadAction(path="/workspace/pkg/new.py", impl_source=FileReadSource.OH_ACI))
    step("undo", FileEditAction(path="/workspace/pkg/new.py", command="undo_edit",
                                impl_source=FileEditSource.OH_ACI))
    run("cat", "cat /workspace/a.txt /workspace/pkg/new.py")

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp, "one.txt")
        one.write_text("uploaded one\n")
        tree = Path(tmp, "tree")
        (tree / "sub").mkdir(parents=True)
        (tree / "top.txt").write_text("top\n")
        (tree / "sub" / "deep.txt").write_text("deep\n")
        runtime.copy_to(str(one), "/workspace/up")
        runtime.copy_to(str(tree), "/workspace/up", recursive=True)
    run("uploaded", "cd /workspace/up && find . -type f | sort && cat one.txt tree/sub/deep.txt")
    out["list_workspace"] = runtime.list_files("/workspace")
    out["list_default"] = runtime.list_files()
    out["list_missing"] = runtime.list_files("/workspace/missing")
    zipped = runtime.copy_from("/workspace/up")
    with zipfile.ZipFile(zipped) as z:
        out["zip"] = {n: z.read(n).decode() for n in sorted(z.namelist())}
    os.unlink(zipped)
    step("ipython", IPythonRunCellAction(code="print(1)"))
    step("browse", BrowseURLAction(url="http://example.com"))
    runtime.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
