"""rLLM: its Sandbox protocol and its environment contract, checked against the signatures rLLM
documents (rLLM is not on PyPI): the protocol below is rLLM's rllm/sandbox/protocol.py."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest

from swebox.integrations.rllm import RllmSandbox, SweboxEnv
from swebox.tasks.model import Task
from swebox.tasks.writers import rllm as rllm_writer
from swebox.tasks.writers.common import WriteOptions
from tests.conftest import my_containers


@runtime_checkable
class Sandbox(Protocol):  # rllm/sandbox/protocol.py, verbatim signatures
    def exec(self, command: str, timeout: float | None = None, user: str | None = None
             ) -> str: ...
    def upload_file(self, local_path: str, remote_path: str) -> None: ...
    def upload_dir(self, local_path: str, remote_path: str) -> None: ...
    def close(self) -> None: ...
    def is_alive(self) -> bool: ...


def _safe_exec(sandbox: Any, command: str, timeout: float | None = None) -> str:
    """rLLM's own helper: a failing command's message instead of an exception."""
    try:
        return str(sandbox.exec(command, timeout=timeout))
    except (RuntimeError, subprocess.CalledProcessError) as e:
        return str(e)


def extra_info(task: Task, **env: Any) -> dict[str, Any]:
    """A row's extra_info exactly as `swebox tasks convert --to rllm` writes it."""
    row = rllm_writer._row(task, WriteOptions())
    return {**row["extra_info"], **env}


def test_sandbox_protocol(sample_tasks: dict[str, Task], tmp_path: Path) -> None:
    sb = RllmSandbox.create("swebox/testbase:bookworm")
    try:
        assert isinstance(sb, Sandbox)
        assert sb.exec("echo out; echo err >&2") == "out\n"
        with pytest.raises(RuntimeError, match=r"exit 3.*\n.*\n.*boom"):
            sb.exec("echo boom >&2; exit 3")
        assert "Command failed (exit 1)" in _safe_exec(sb, "false")
        with pytest.raises(RuntimeError, match="timed out"):
            sb.exec("sleep 30", timeout=1)
        (tmp_path / "f.txt").write_text("one")
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "g.txt").write_text("two")
        sb.upload_file(str(tmp_path / "f.txt"), "/tmp/up/f.txt")
        sb.upload_dir(str(tmp_path / "d"), "/tmp/up/d")
        assert sb.exec("cat /tmp/up/f.txt /tmp/up/d/g.txt") == "onetwo"
        assert sb.is_alive()
    finally:
        sb.close()
    assert sb.is_alive() is False  # never raises


def _r2e(fn: str, **params: str) -> str:
    body = "".join(f"<parameter={k}>{v}</parameter>\n" for k, v in params.items())
    return f"Let me act.\n<function={fn}>\n{body}</function>"


def test_env_contract_gold_and_hacker(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["paginate"]
    assert SweboxEnv.is_multithread_safe()
    env = SweboxEnv.from_dict(json.dumps(extra_info(task)))  # rLLM may pass it JSON-encoded
    try:
        instruction, info = env.reset()
        assert task.problem_statement in instruction and info["tools"]
        tag = "EOF_" + secrets.token_hex(3)
        obs, reward, done, _ = env.step(_r2e(
            "execute_bash", cmd=f"git apply <<'{tag}'\n{task.gold_patch}{tag}"))
        assert obs.startswith("Exit code: 0") and reward == 0.0 and not done
        obs, reward, done, info = env.step(_r2e("finish", command="submit"))
        assert done and obs.endswith("<<< Finished >>>") and info["verdict"]["resolved"]
        assert env.compute_final_reward() == 1.0
    finally:
        env.close()
    hacker = SweboxEnv.from_dict(extra_info(task))
    try:
        hacker.reset()
        hacker.step(_r2e("execute_bash", cmd="rm -rf tests && echo gone"))
        # ending without a submit: the final reward still comes from the grader
        assert hacker.compute_final_reward() == 0.0
    finally:
        hacker.close()
    assert my_containers() == []


def test_32_concurrent_episodes(sample_tasks: dict[str, Task]) -> None:
    tasks = list(sample_tasks.values())
    errors: list[str] = []

    def episode(i: int) -> None:
        env = SweboxEnv.from_dict(extra_info(tasks[i % len(tasks)], grade=False, max_steps=5))
        try:
            env.reset()
            obs, _, _, _ = env.step(_r2e("execute_bash", cmd=f"echo episode-{i}"))
            if f"episode-{i}" not in obs:
                errors.append(f"{i}: {obs[:200]}")
            _, _, done, _ = env.step(_r2e("finish", command="submit"))
            if not done:
                errors.append(f"{i}: not done after submit")
        except Exception as e:
            errors.append(f"{i}: {type(e).__name__}: {e}")
        finally:
            env.close()

    threads = [threading.Thread(target=episode, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert my_containers() == []
