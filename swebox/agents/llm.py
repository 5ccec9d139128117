"""The LLM agent: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, a
local router) as the policy of a SweEnv episode.

The `openai` package does the HTTP: retries with back-off on 429 (honouring Retry-After), 5xx,
timeouts and broken connections, up to `max_retries`. The agent adds what is the loop's own:
tool calling or, for models without it, the dialect's text form; a context budget (old
observations elided, the cut marked); step and time limits; tokens and cost from `usage`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from pydantic import BaseModel, Field

from swebox.agents.actions import parse_action
from swebox.agents.context import fit_budget
from swebox.agents.env import SweEnv
from swebox.agents.trajectory import Trajectory, Usage, record_turn


class LLMConfig(BaseModel):
    model: str
    base_url: str | None = None  # default: $OPENAI_BASE_URL, else OpenAI's
    api_key: str | None = None  # default: $OPENAI_API_KEY, else "EMPTY" (local servers)
    tool_calling: bool = True  # False: the dialect's text form, for models without tools
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    timeout: float = Field(default=300.0, gt=0, description="seconds per request")
    max_retries: int = Field(default=6, ge=0)
    context_chars: int = Field(default=400_000, ge=1000, description="prompt budget, chars")
    price_in: float = Field(default=0.0, ge=0, description="cost per 1M prompt tokens")
    price_out: float = Field(default=0.0, ge=0, description="cost per 1M completion tokens")
    extra_body: dict[str, Any] = Field(default_factory=dict)


class ModelError(Exception):
    """The endpoint could not answer, retries included."""


class LLMAgent:
    name = "llm"

    def __init__(self, config: LLMConfig, client: Any = None) -> None:
        self.config = config
        if client is None:
            import openai

            client = openai.OpenAI(
                base_url=config.base_url or os.environ.get("OPENAI_BASE_URL"),
                api_key=config.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
                timeout=config.timeout, max_retries=config.max_retries)
        self.client = client

    def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
                  ) -> dict[str, Any]:
        """One chat completion as the endpoint's JSON. The request goes through the openai
        client's transport (its retries, back-off, Retry-After and timeouts) but not through
        `chat.completions.create`, whose per-request walk over every message to transform
        the params costs ~40 ms of CPU at 60 messages: most of a step's CPU, and at 16
        concurrent episodes on a small node the limit on steps per second."""
        import httpx
        import openai

        c = self.config
        body: dict[str, Any] = {"model": c.model, "messages": messages}
        if c.tool_calling and tools:
            body["tools"] = tools
        for k in ("temperature", "top_p", "max_tokens"):
            if getattr(c, k) is not None:
                body[k] = getattr(c, k)
        body.update(c.extra_body)
        try:
            raw = self.client.post("/chat/completions", body=body, cast_to=httpx.Response)
            resp = orjson.loads(raw.content)
        except openai.APIError as e:
            raise ModelError(f"{type(e).__name__}: {str(e)[:300]}") from e
        except orjson.JSONDecodeError as e:
            raise ModelError(f"the endpoint's answer is not JSON: {e}") from e
        if not isinstance(resp, dict) or not resp.get("choices"):
            raise ModelError("the endpoint answered with no choices")
        return resp

    def run(self, env: SweEnv, sample: int = 0) -> Trajectory:
        """One episode: reset, then model turns and env steps until the episode ends. On an
        unexpected error the env is closed (its sandbox never outlives the call) and the error
        raised."""
        try:
            return self._run(env, sample)
        except BaseException:
            env.close()
            raise

    def _run(self, env: SweEnv, sample: int) -> Trajectory:
        c = self.config
        started_at = time.time()
        usage = Usage()
        obs = env.reset()
        system = obs.system if c.tool_calling else \
            f"{obs.system}\n\n{env.dialect.text_instructions()}"
        messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                          {"role": "user", "content": obs.text}]
        error: str | None = None
        model_time = 0.0
        while not env.done:
            t0 = time.monotonic()
            try:
                resp = self._complete(fit_budget(messages, c.context_chars), obs.tools)
            except ModelError as e:
                error = str(e)
                env.finish("model_error")
                break
            finally:
                model_time += time.monotonic() - t0
            u = resp.get("usage") or {}
            cost = ((u.get("prompt_tokens") or 0) * c.price_in
                    + (u.get("completion_tokens") or 0) * c.price_out) / 1e6
            usage.add(u, cost)
            usage.calls += 1
            msg = resp["choices"][0].get("message") or {}
            parsed = parse_action({"role": "assistant", **msg}, env.dialect.bash_tool,
                                  env.dialect.bash_arg)
            _, _, done, info = env.step(parsed)
            record_turn(messages, parsed.text, parsed.calls, info)
            if not done and time.monotonic() - env.started >= env.limits.wall_time:
                env.finish("wall_time")
        s = env.summary()
        timings = {**s["timings"], "model": round(model_time, 4)}
        v = s["verdict"]
        return Trajectory(instance_id=env.task.instance_id, sample=sample, model=c.model,
                          agent=self.name, dialect=env.dialect.name, messages=messages,
                          tools=obs.tools, reward=s["reward"],
                          resolved=bool(v and v.get("resolved")), verdict=v, patch=s["patch"],
                          exit_reason=s["exit_reason"], steps=s["steps"],
                          refused_calls=s["refused_calls"], usage=usage, timings=timings,
                          error=error, started_at=started_at)
