"""A trajectory: one episode as a plain record, written as one JSONL line.

The conversation is kept as OpenAI chat messages (assistant `tool_calls` with JSON-string
arguments, `tool` messages answering them by id), beside the tool schemas the model saw, so
that a trajectory replays into any chat template; the exporters (swebox.agents.export) turn it
into SFT rows, mini-swe-agent `.traj.json` files and predictions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError

SCHEMA_VERSION = 1


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    calls: int = 0  # model requests answered
    retries: int = 0

    def add(self, usage: Any, cost: float = 0.0) -> None:
        if usage is None:
            return
        get = usage.get if isinstance(usage, dict) else lambda k, d=0: getattr(usage, k, d)
        self.prompt_tokens += int(get("prompt_tokens", 0) or 0)
        self.completion_tokens += int(get("completion_tokens", 0) or 0)
        self.total_tokens += int(get("total_tokens", 0) or 0)
        self.cost += cost


class Trajectory(BaseModel):
    schema_version: int = SCHEMA_VERSION
    instance_id: str
    sample: int = 0
    model: str | None = None
    agent: str  # required, with `messages`: a task or prediction row is not a trajectory
    dialect: str = "swebox"
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    reward: float = 0.0
    resolved: bool = False
    verdict: dict[str, Any] | None = None
    patch: str = ""
    exit_reason: str | None = None
    steps: int = 0
    refused_calls: int = 0
    usage: Usage = Field(default_factory=Usage)
    timings: dict[str, float] = Field(default_factory=dict)
    error: str | None = None  # what stopped the episode early, when something did
    started_at: float = 0.0  # unix time

    @property
    def key(self) -> tuple[str, int]:
        return self.instance_id, self.sample

    def line(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json")) + b"\n"


def record_turn(messages: list[dict[str, Any]], content: str, calls: list[Any],
                info: dict[str, Any]) -> None:
    """Append one turn: the assistant message (its tool calls, if it made them as calls) and
    the answers: a `tool` message per call, or a `user` message for text actions and
    unreadable turns. Calls left unrun after a submit are answered too (every tool call
    needs its answer for the conversation to be valid)."""
    via_tools = [tc for tc in calls if tc.form == "tool_call"]
    assistant: dict[str, Any] = {"role": "assistant", "content": content}
    if via_tools:
        assistant["tool_calls"] = [tc.as_openai() for tc in via_tools]
    messages.append(assistant)
    ids = {tc.id for tc in via_tools}
    answered = set()
    for r in info["results"]:
        if r["tool_call_id"] in ids:
            answered.add(r["tool_call_id"])
            messages.append({"role": "tool", "tool_call_id": r["tool_call_id"],
                             "name": r["name"], "content": r["observation"]})
        else:
            messages.append({"role": "user", "content": r["observation"]})
    for tc in via_tools:
        if tc.id not in answered:
            messages.append({"role": "tool", "tool_call_id": tc.id, "name": tc.name,
                             "content": "Not run: the episode had ended."})


def read_trajectories(path: str | Path, *, strict: bool = False) -> Iterator[Trajectory]:
    """Stream trajectories from a JSONL file; a torn or invalid line is skipped (or, with
    `strict`, reported with its line number)."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield Trajectory.model_validate(orjson.loads(raw))
            except (orjson.JSONDecodeError, ValidationError) as e:
                if strict:
                    from swebox.errors import BadInput

                    raise BadInput(f"{path}:{n}: not a trajectory: {str(e).splitlines()[0]}",
                                   hint="is this a swebox trajectories.jsonl?") from e
