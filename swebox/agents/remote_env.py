"""RemoteEnv: SweEnv's API with the episode running on a swebox server (`/v1/episodes`).

    with RemoteEnv(task, url="http://node7:8477", api_key=KEY, dialect="r2e") as env:
        obs = env.reset()
        text, reward, done, info = env.step(tool_call)

The trainer needs no engine: the sandbox, the tools and the grading run on the server. Each
call is one request; the server's errors come back as swebox errors.
"""

from __future__ import annotations

from typing import Any

from swebox.agents.actions import ParsedAction, ToolCall
from swebox.agents.env import EpisodeLimits, Observation, RewardOptions
from swebox.errors import SweboxError
from swebox.sandbox.remote import Client
from swebox.tasks.model import Task


class RemoteEnv:
    def __init__(self, task: Task, *, url: str | None = None, api_key: str | None = None,
                 dialect: str = "swebox", limits: EpisodeLimits | None = None,
                 reward: RewardOptions | None = None) -> None:
        self.task, self.dialect = task, dialect
        self.limits = limits or EpisodeLimits()
        self.reward_options = reward or RewardOptions()
        self.client = Client.get(url, api_key)
        self.episode: str | None = None
        self.done = False

    def reset(self) -> Observation:
        self.close()
        body = {"task": self.task.model_dump(mode="json"), "dialect": self.dialect,
                "limits": self.limits.model_dump(), "reward": self.reward_options.model_dump()}
        data = self.client.call("POST", "/v1/episodes", json=body, timeout=None,
                                admit=True).json()
        self.episode, self.done = str(data["episode"]), False
        return Observation.model_validate(data["observation"])

    def step(self, action: Any) -> tuple[str, float, bool, dict[str, Any]]:
        if self.episode is None:
            raise SweboxError("step() on an environment that is not running",
                              hint="call reset() first")
        if isinstance(action, ToolCall):
            action = action.as_openai()
        elif isinstance(action, ParsedAction):
            action = [c.as_openai() for c in action.calls]
        elif hasattr(action, "model_dump"):  # an openai ChatCompletionMessage
            action = action.model_dump(mode="json")
        data = self.client.call("POST", f"/v1/episodes/{self.episode}/step",
                                json={"action": action}, timeout=None).json()
        self.done = bool(data["done"])
        return str(data["observation"]), float(data["reward"]), self.done, dict(data["info"])

    def finish(self, reason: str = "closed") -> dict[str, Any]:
        if self.episode is None:
            return {}
        out: dict[str, Any] = self.client.call(
            "POST", f"/v1/episodes/{self.episode}/finish", json={"reason": reason},
            timeout=None).json()
        return out

    def close(self) -> None:
        if self.episode is not None:
            eid, self.episode = self.episode, None
            try:
                self.client.call("DELETE", f"/v1/episodes/{eid}")
            except SweboxError:
                pass

    def __enter__(self) -> RemoteEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
