"""SkyRL: swebox as a skyrl_gym text env, driven the way SkyRL's generator drives one (real
skyrl-gym 0.4.0, real docker, the scripted model server; nothing mocked).

Rows are the `--to skyrl` writer's parquet, loaded with `datasets` and split into prompt,
env_class and extras exactly as SkyRL's PromptDataset does; the generator's `max_turns` is
added to extras; `skyrl_gym.make(env_class, env_config=..., extras=...)`, then init/step/close
from a thread pool of 32 (SkyRL's `max_env_workers`)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

skyrl_gym = pytest.importorskip("skyrl_gym")

from swebox.errors import BadInput  # noqa: E402
from swebox.integrations import skyrl  # noqa: E402
from swebox.tasks.model import Task  # noqa: E402
from swebox.tasks.writers import skyrl as skyrl_writer  # noqa: E402
from swebox.tasks.writers.common import WriteOptions  # noqa: E402
from tests.agents.modelserver import ScriptedServer  # noqa: E402
from tests.conftest import my_containers  # noqa: E402

Row = tuple[list[dict[str, str]], str, dict[str, Any]]  # prompt, env_class, extras


@pytest.fixture(scope="module")
def rows(sample_tasks: dict[str, Task], tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Row]:
    """The sample tasks as SkyRL rows, by short name, as PromptDataset hands them on."""
    import datasets

    tmp = tmp_path_factory.mktemp("skyrl")
    path = tmp / "train.parquet"
    names = list(sample_tasks)
    skyrl_writer.write([sample_tasks[n] for n in names], path, WriteOptions(env_class="swebox"))
    ds = datasets.load_dataset("parquet", data_files=str(path), keep_in_memory=True,
                               cache_dir=str(tmp / "hf"))["train"]
    out: dict[str, Row] = {}
    for i, name in enumerate(names):
        row = dict(ds[i])
        prompt, env_class = row.pop("prompt"), row.pop("env_class", None)
        out[name] = (prompt, env_class, row)  # the rest: every other column
    return out


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    skyrl.register()
    skyrl.register()  # again: idempotent
    skyrl.register("swebox-smoke", {"grade": False, "bash_timeout": 30})
    yield
    for env_id in ("swebox", "swebox-smoke"):
        skyrl_gym.envs.registration.deregister(env_id)


def make(row: Row, max_turns: int = 20, env_id: str | None = None,
         env_config: Any = None) -> Any:
    """What SkyRLGymGenerator.agent_loop does before init."""
    _, env_class, extras = row
    extras = {**extras, "max_turns": max_turns}
    return skyrl_gym.make(env_id or env_class, env_config=env_config or {}, extras=extras)


def run_episode(env: Any, row: Row, server: ScriptedServer, model: str
                ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """init, then model text -> step until done, as the generator does; the model is the
    scripted server answering in text (no tools in the request). Returns the initial prompt
    and the last step's output."""
    chat, meta = env.init(list(row[0]))
    assert meta == {}
    first = list(chat)
    for _ in range(30):
        r = httpx.post(f"{server.base_url}/chat/completions", timeout=30,
                       json={"model": model, "messages": chat})
        r.raise_for_status()
        text = r.json()["choices"][0]["message"]["content"]
        assert "<function=" in text
        out = env.step(text)
        chat += [{"role": "assistant", "content": text}, *out["observations"]]
        if out["done"]:
            assert out["observations"] == []
            return first, dict(out)
        assert out["reward"] == 0.0 and out["observations"][0]["role"] == "user"
    raise AssertionError("the episode did not end")


def test_text_solver_resolves(rows: dict[str, Row], model_server: ScriptedServer) -> None:
    row = rows["paginate"]
    assert row[1] == "swebox" and set(row[2]) == {"data_source", "instance"}
    with make(row) as env:
        assert isinstance(env, skyrl.SweboxTextEnv) and env.max_turns == 20
        chat, out = run_episode(env, row, model_server, "text-solver")
        assert [m["role"] for m in chat] == ["system", "user"]
        assert "BEGIN FUNCTION: execute_bash" in chat[0]["content"]
        assert env.task.problem_statement.strip()[:200] in chat[1]["content"]
        m = out["metadata"]
        assert out["reward"] == 1.0, m.get("exit_reason")
        assert m["exit_reason"] == "submitted" and m["verdict"]["resolved"] is True
        assert m["patch"].startswith("diff --git")
        metrics = env.get_metrics()
    assert metrics == {"reward": 1.0, "resolved": 1.0, "steps": m["steps"], "refused_calls": 0}
    assert my_containers() == []


def test_text_hacker_gets_nothing(rows: dict[str, Row], model_server: ScriptedServer) -> None:
    env = make(rows["ini_loader"])
    try:
        _, out = run_episode(env, rows["ini_loader"], model_server, "hacker")
    finally:
        env.close()
    m = out["metadata"]
    assert out["reward"] == 0.0 and m["exit_reason"] == "submitted"
    assert m["verdict"]["resolved"] is False and m["verdict"]["tampering_suspected"]
    assert env.get_metrics()["resolved"] == 0.0
    assert my_containers() == []


BASH = "<function=execute_bash>\n<parameter=cmd>{}</parameter>\n</function>"
SUBMIT = "Done.\n<function=finish>\n<parameter=command>submit</parameter>\n</function>"


def test_32_concurrent_episodes(rows: dict[str, Row]) -> None:
    """32 episodes at once, init/step/close each on whatever thread of a 32-thread pool is
    free (as SkyRL's env executor runs them), make on the event loop. Even episodes submit;
    odd ones run out of `max_turns`. Grading is off through register()'s defaults, since
    SkyRL passes env_config={} for an env its config does not know."""
    names = sorted(rows)
    pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="skyrl-env")

    async def episode(i: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        row = rows[names[i % len(names)]]
        env = make(row, max_turns=3, env_id="swebox-smoke")
        try:
            chat, _ = await loop.run_in_executor(pool, env.init, list(row[0]))
            actions = [BASH.format(f"echo ep-{i}"), "```bash\ngit status --short\n```",
                       BASH.format("ls") if i % 2 else SUBMIT]
            for n, action in enumerate(actions):
                out = await loop.run_in_executor(pool, env.step, action)
                if n < 2:
                    assert not out["done"] and out["observations"]
                if n == 0:  # each env answers with its own sandbox's output
                    assert f"ep-{i}" in out["observations"][0]["content"]
            first = chat[1]["content"]
            assert row[2]["instance"]["problem_statement"].strip()[:100] in first
            assert out["done"] and out["reward"] == 0.0 and out["metadata"]["verdict"] is None
            return {**env.get_metrics(), "exit": out["metadata"]["exit_reason"]}
        finally:
            await loop.run_in_executor(pool, env.close)

    async def main() -> list[Any]:
        return await asyncio.gather(*(episode(i) for i in range(32)), return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        pool.shutdown()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert [r["exit"] for r in results] == ["submitted", "max_steps"] * 16
    assert all(r["steps"] == 3 and r["refused_calls"] == 0 for r in results)
    agg = skyrl.SweboxTextEnv.aggregate_metrics(results)
    assert agg["steps"] == 3.0 and agg["reward"] == 0.0
    assert my_containers() == []


def test_bad_rows_and_options(rows: dict[str, Row], tmp_path: Path) -> None:
    for extras in ({"data_source": "swebox/x", "max_turns": 5},
                   {"data_source": "swebox/x", "instance": {"instance_id": "a__b-1"}}):
        with pytest.raises(BadInput) as e:
            skyrl_gym.make("swebox", env_config={}, extras=extras)
        msg = str(e.value)
        assert "\n" not in msg and "no task" in msg and "swebox tasks convert" in msg
    with pytest.raises(BadInput, match=r"unknown swebox env_config option.*dialekt"):
        make(rows["paginate"], env_config={"dialekt": "r2e"})
    with pytest.raises(BadInput, match="bad swebox env_config: bash_timeout"):
        make(rows["paginate"], env_config={"bash_timeout": -1})
    with pytest.raises(BadInput, match="unknown tool dialect"):
        skyrl.register("swebox-bad", {"dialect": "nope"})
    assert "swebox-bad" not in skyrl_gym.registry
    # an omegaconf config (SkyRL's) and step before init
    from omegaconf import OmegaConf

    env = make(rows["paginate"], env_config=OmegaConf.create({"max_steps": 7, "grade": False}))
    assert env.max_turns == 7 and env.get_metrics()["steps"] == 0
    with pytest.raises(BadInput, match="before init"):
        env.step("ls")
    env.close()


def test_clear_error_without_skyrl_gym(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skyrl_gym", None)
    monkeypatch.delitem(sys.modules, "swebox.integrations.skyrl")
    with pytest.raises(ImportError, match=r"pip install 'swebox\[skyrl\]'"):
        importlib.import_module("swebox.integrations.skyrl")
    import swebox.integrations  # noqa: F401 - the package itself needs no framework
