"""The LLM agent against a real OpenAI-compatible server on loopback playing scripted
policies: a solver in every dialect (tool calls and text), a hacker, a flailer and an
unreliable server. The model is not under test; the loop, tools, sandboxes and rewards are."""

from __future__ import annotations

from pathlib import Path

import pytest

from swebox.agents import DIALECTS, EpisodeLimits, LLMAgent, LLMConfig, SweEnv, Trajectory
from swebox.tasks.model import Task
from tests.agents.modelserver import ScriptedServer
from tests.conftest import my_containers


def agent(server: ScriptedServer, model: str, **kw: object) -> LLMAgent:
    return LLMAgent(LLMConfig(model=model, base_url=server.base_url, timeout=3, max_retries=4,
                              **kw))  # type: ignore[arg-type]


def check_conversation(t: Trajectory) -> None:
    """Every tool call is answered by a tool message with its id, in order."""
    pending: list[str] = []
    for m in t.messages:
        if m["role"] == "assistant":
            assert not pending, "a tool call went unanswered"
            pending = [tc["id"] for tc in m.get("tool_calls") or []]
        elif m["role"] == "tool":
            assert m["tool_call_id"] == pending.pop(0)
    assert not pending


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_solver_resolves_in_every_dialect(sample_tasks: dict[str, Task],
                                          model_server: ScriptedServer, dialect: str) -> None:
    task = sample_tasks["rate_limiter"] if dialect == "swebox" else sample_tasks["ini_loader"]
    with SweEnv(task, dialect=dialect) as env:
        t = agent(model_server, "solver").run(env)
    assert t.reward == 1.0 and t.resolved and t.exit_reason == "submitted", t.error
    assert t.dialect == dialect and t.tools == env.dialect.schemas()
    assert t.usage.calls == t.steps and t.usage.total_tokens > 0
    assert t.patch.startswith("diff --git") and t.refused_calls == 0
    check_conversation(t)


@pytest.mark.parametrize("dialect", ["r2e", "swebox"])
def test_solver_in_text_form(sample_tasks: dict[str, Task], model_server: ScriptedServer,
                             dialect: str) -> None:
    with SweEnv(sample_tasks["paginate"], dialect=dialect) as env:
        t = agent(model_server, "text-solver", tool_calling=False).run(env)
    assert t.reward == 1.0, (t.exit_reason, t.error)
    assert all("tool_calls" not in m for m in t.messages)
    assert "<function=" in t.messages[2]["content"]


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_hacker_gets_nothing(sample_tasks: dict[str, Task], model_server: ScriptedServer,
                             dialect: str) -> None:
    with SweEnv(sample_tasks["ini_loader"], dialect=dialect) as env:
        t = agent(model_server, "hacker").run(env)
    assert t.exit_reason == "submitted" and t.reward == 0.0 and not t.resolved
    v = t.verdict or {}
    assert v["tampering_suspected"] and {"conftest.py", "tests/test_config.py"} <= set(
        v["reverted"])
    # the hidden tests were nowhere the hacker looked
    assert "test_file_defaults_do_not_leak" not in t.messages[3]["content"]


TIMED_OUT = {"swebox": "timed out after 2 s", "r2e": "took too long to execute (>2s)",
             "openhands": "timed out after 2 seconds",
             "sweagent": "cancelled because it took more than 2 seconds"}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_flailer_survives_and_leaves_nothing(sample_tasks: dict[str, Task],
                                             model_server: ScriptedServer,
                                             dialect: str) -> None:
    limits = EpisodeLimits(bash_timeout=2, max_steps=30, output_chars=4000)
    with SweEnv(sample_tasks["texttable"], dialect=dialect, limits=limits) as env:
        t = agent(model_server, "flailer").run(env)
    assert t.exit_reason == "submitted" and t.error is None
    obs = [str(m["content"]) for m in t.messages if m["role"] in ("tool", "user")][1:]
    assert "not valid JSON" in obs[0] and "no_such_tool" in obs[1]
    assert "does not exist" in obs[2]
    assert len(obs[3]) < 4400 and "elided" in obs[3]  # 50 MB of output, capped
    assert TIMED_OUT[dialect] in obs[4]  # sleep 1000
    assert TIMED_OUT[dialect] in obs[5]  # a command that ignores SIGTERM
    # after a fork bomb and an `exit` the shell is back: at once, or (where each command needs
    # a fork, as R2E's subshells do) by the next command, once the one that met the full
    # process limit timed out and the sandbox was cleared
    assert "still-here" in obs[8] or "still-here" in obs[9]
    assert t.refused_calls >= 3 and t.reward == 0.0 and t.verdict is not None
    assert my_containers() == []


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_unreliable_server_is_retried(sample_tasks: dict[str, Task],
                                      model_server: ScriptedServer, dialect: str) -> None:
    before = model_server.requests
    with SweEnv(sample_tasks["semver_range"], dialect=dialect) as env:
        t = agent(model_server, "unreliable-solver").run(env)
    assert t.reward == 1.0 and t.error is None, t.exit_reason
    # each step's first request failed (429, 500, a cut body, a slow reply) and was retried
    assert model_server.requests - before >= 2 * t.usage.calls


def test_a_dead_endpoint_ends_the_episode_with_a_reason(sample_tasks: dict[str, Task]) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    cfg = LLMConfig(model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, timeout=2)
    with SweEnv(sample_tasks["semver_range"]) as env:
        t = LLMAgent(cfg).run(env)
    assert t.exit_reason == "model_error" and t.error and "Connection" in t.error
    assert my_containers() == []


def test_solver_resolves_every_sample_task(sample_tasks: dict[str, Task],
                                           model_server: ScriptedServer,
                                           tmp_path: Path) -> None:
    from swebox.agents import run_rollouts

    out = tmp_path / "run"
    report = run_rollouts(list(sample_tasks.values()), lambda: agent(model_server, "solver"),
                          out, workers=2)
    assert report.episodes == len(sample_tasks) == 5 and report.errors == 0
    assert report.mean_reward == 1.0 and sorted(report.resolved_tasks) == sorted(
        t.instance_id for t in sample_tasks.values())
    assert my_containers() == []
