"""SweEnv on real sandboxes: reset and step, the ways an episode ends, threads and asyncio,
GRPO groups forked from one prepared state, the warm pool, hidden tests out of the agent's
reach, and reward shaping."""

from __future__ import annotations

import asyncio
import threading

import pytest

from swebox.agents import (
    EpisodeLimits,
    PreparedState,
    RewardOptions,
    RuleAgent,
    SeatPool,
    SweEnv,
    ToolCall,
)
from swebox.errors import SweboxError
from swebox.tasks.model import Task

NO_GRADE = RewardOptions(grade=False)


def bash(cmd: str) -> ToolCall:
    return ToolCall(name="bash", arguments={"command": cmd})


def test_reset_gives_the_task_and_the_tools(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["paginate"]
    env = SweEnv(task, reward=NO_GRADE)
    with pytest.raises(SweboxError, match="reset"):
        env.step(bash("true"))
    with env:
        obs = env.reset()
        assert task.problem_statement in obs.text and "/testbed" in obs.system
        assert [t["function"]["name"] for t in obs.tools] == ["bash", "str_replace_editor",
                                                               "search", "submit"]
        text, reward, done, info = env.step(bash("git status --short; echo ok"))
        assert text.endswith("ok\n[exit code: 0]") and reward == 0.0 and not done
        assert info["results"][0]["name"] == "bash"
        sandbox = env.seat.sandbox  # type: ignore[union-attr]
        _, _, done, info = env.step(ToolCall(name="submit", arguments={}))
        assert done and info["exit_reason"] == "submitted" and info["patch"] == ""
        with pytest.raises(SweboxError, match="not running"):
            env.step(bash("true"))
        # the agent's sandbox goes once the episode is over (removed in the background while
        # grading starts; close() waits for it)
        assert env.seat is None
        env.close()
        with pytest.raises(SweboxError):
            sandbox.exec("true")


def test_step_and_wall_time_limits(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["paginate"]
    with SweEnv(task, reward=NO_GRADE, limits=EpisodeLimits(max_steps=2)) as env:
        env.reset()
        assert not env.step(bash("echo 1"))[2]
        _, _, done, info = env.step(bash("echo change >> README.md"))
        assert done and info["exit_reason"] == "max_steps" and "+change" in info["patch"]
    with SweEnv(task, reward=NO_GRADE, limits=EpisodeLimits(wall_time=1)) as env:
        env.reset()
        _, _, done, info = env.step(bash("sleep 1.2"))
        assert done and info["exit_reason"] == "wall_time"


def test_many_envs_in_threads_and_in_asyncio(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["semver_range"]
    hosts: list[str] = []
    errors: list[BaseException] = []

    def episode(i: int) -> None:
        try:
            with SweEnv(task, reward=NO_GRADE) as env:
                env.reset()
                env.step(bash(f"echo {i} > mine.txt"))
                out = env.step(bash("hostname; cat mine.txt"))[0]
                assert out.split("\n")[1] == str(i)
                hosts.append(out.split("\n")[0])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=episode, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(hosts)) == 4

    async def run() -> list[str]:
        envs = [SweEnv(task, reward=NO_GRADE) for _ in range(3)]
        await asyncio.gather(*(e.areset() for e in envs))
        outs = await asyncio.gather(*(e.astep(bash("hostname")) for e in envs))
        ends = await asyncio.gather(*(e.astep(ToolCall(name="submit", arguments={}))
                                      for e in envs))
        assert all(done for _, _, done, _ in ends)
        return [o[0] for o in outs]

    assert len(set(asyncio.run(run()))) == 3


def test_a_group_forks_from_one_prepared_state(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["texttable"]
    state = PreparedState(task, 3)
    envs = [SweEnv(task, reward=NO_GRADE, seat_factory=state.seat) for _ in range(3)]
    try:
        for e in envs:
            e.reset()
        envs[0].step(bash("echo only-here > fork.txt"))
        assert "only-here" in envs[0].step(bash("cat fork.txt"))[0]
        assert "No such file" in envs[1].step(bash("cat fork.txt"))[0]
        assert state.uses == 0
        _, _, _, info = envs[2].step(ToolCall(name="submit", arguments={}))
        assert info["patch"] == ""  # the fork starts at the task's own starting commit
    finally:
        for e in envs:
            e.close()
    with pytest.raises(RuntimeError):
        state.seat()


def test_warm_pool(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["texttable"]
    with SeatPool(task, 2) as pool:
        pool.wait_ready()
        for _ in range(3):
            with SweEnv(task, reward=NO_GRADE, seat_factory=pool.acquire) as env:
                env.reset()
                assert env.step(bash("pwd"))[0].startswith("/testbed")


def test_hidden_tests_are_never_in_the_agent_sandbox(sample_tasks: dict[str, Task]) -> None:
    from swebox.samples import load_tasks
    from swebox.samples.layouts import as_task, build_layout

    sample = load_tasks(["ini_loader"])[0]
    build_layout(sample, "r2e")
    task = as_task(sample, "r2e")
    with SweEnv(task, dialect="r2e") as env:  # R2E rows carry no gold patch: give it
        traj = RuleAgent(sample.gold_patch).run(env)
    assert traj.reward == 1.0
    text = "\n".join(str(m["content"]) for m in traj.messages)
    assert "r2e_tests" not in text
    with SweEnv(task, dialect="r2e", reward=NO_GRADE) as env:
        env.reset()
        out = env.step(ToolCall(name="execute_bash",
                                arguments={"cmd": "ls /r2e_tests /run_tests.sh"}))[0]
        assert "No such file" in out


def test_reward_shaping(sample_tasks: dict[str, Task]) -> None:
    task = sample_tasks["ini_loader"]
    with SweEnv(task, reward=RewardOptions(format_penalty=0.25)) as env:
        env.reset()
        env.step(ToolCall(name="no_such_tool"))
        env.step(task.gold_patch and bash(
            "git apply <<'EOF'\n" + task.gold_patch + "EOF"))
        _, reward, done, info = env.step(ToolCall(name="submit"))
    assert done and info["verdict"]["resolved"] and reward == 0.75
    with SweEnv(task, reward=RewardOptions(partial=True)) as env:
        env.reset()
        _, reward, _, info = env.step(ToolCall(name="submit"))
    assert not info["verdict"]["resolved"] and reward == info["verdict"]["partial"]
