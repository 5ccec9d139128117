"""SkyRL: a swebox task as a `skyrl_gym` text environment (skyrl-gym 0.4.0).

    # in the Ray entrypoint, before the trainer starts (as SkyRL's own examples register theirs):
    from swebox.integrations.skyrl import register
    register()                                   # env id "swebox"; or register("swebox", {...})

Data: `swebox tasks convert T --to skyrl --env-class swebox -o train.parquet`: SkyRL makes the
env a row's env_class names, and falls back to `environment.env_class` only when the column is
null, not the string "null" the writer puts by default (SkyRL's mini-swe-agent example's
value). Importing this module registers nothing:
call `register()` in the process that runs the generator.

How SkyRL drives it, translated onto `SweEnv`:
- `make("swebox", env_config=..., extras=row)`: the task is read from the row's `instance`
  column (every column but prompt and env_class, as PromptDataset passes them, plus
  `max_turns`). No sandbox starts here.
- `init(prompt)` starts the episode's sandbox and returns the prompt: a system message (the
  dialect's system prompt and its tools described in text) and the dialect's instance prompt
  as the user message. The row's own prompt (the bare problem statement) is replaced, so the
  model sees what the scaffold it imitates (R2E-Gym by default) shows.
- `step(text)` gets the model's raw decoded text: R2E's `<function=...>` form or one fenced
  bash block. The observation comes back as a user message; at the end the observation list
  is empty, `reward` is the graded reward and `metadata` has the exit reason and verdict.
- `close()` removes the sandbox; `get_metrics()` gives reward, resolved, steps, refused_calls.

Options (`env_config` of `make`, or `register(env_id, config)` defaults under it): dialect
("r2e"), backend ("docker"), max_steps (default: the generator's `max_turns`, whose own
default is 1: set `generator.max_turns` or max_steps), bash_timeout, wall_time, output_chars,
partial_reward, format_penalty, grade (False: no grading, reward 0, for smoke runs). SkyRL's
`SkyRLGymConfig` has no field for a custom env, so the generator passes `env_config={}`:
`register`'s defaults are the way to set them without extending that config class.

SkyRL calls these methods synchronously from a thread pool (`max_env_workers`, 32): each env
owns its own sandbox, so that is safe. A step or init that raises closes its sandbox first
(SkyRL does not call `close()` on that path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

try:
    import skyrl_gym
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
except ImportError as _e:  # pragma: no cover - exercised in a test with skyrl_gym hidden
    raise ImportError("swebox.integrations.skyrl needs skyrl-gym: "
                      "pip install 'swebox[skyrl]'") from _e

from pydantic import ValidationError

from swebox.agents.dialects import Dialect, get_dialect
from swebox.agents.env import EpisodeLimits, RewardOptions, SweEnv
from swebox.errors import BadInput
from swebox.integrations.common import task_from_row

ENV_ID = "swebox"
ENTRY_POINT = "swebox.integrations.skyrl:SweboxTextEnv"
OPTIONS = ("dialect", "backend", "max_steps", "bash_timeout", "wall_time", "output_chars",
           "partial_reward", "format_penalty", "grade")


def _as_dict(config: Any) -> dict[str, Any]:
    """env_config as SkyRL may pass it: None, a dict, an omegaconf DictConfig, a dataclass."""
    from omegaconf import DictConfig, OmegaConf  # a dependency of skyrl-gym

    if config is None:
        return {}
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise BadInput(f"env_config must be a mapping, got {type(config).__name__}")
    return {str(k): v for k, v in config.items()}


def _one_line(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())


@dataclasses.dataclass
class Options:
    dialect: Dialect
    backend: str
    limits: EpisodeLimits
    reward: RewardOptions


def options(config: Any = None, max_turns: Any = None) -> Options:
    """The env's options from a config (checked: unknown keys and bad values are errors)."""
    cfg = _as_dict(config)
    unknown = sorted(set(cfg) - set(OPTIONS))
    if unknown:
        raise BadInput(f"unknown swebox env_config option(s): {', '.join(unknown)}",
                       hint=f"known: {', '.join(OPTIONS)}")
    try:
        limits = EpisodeLimits(max_steps=cfg.get("max_steps") or max_turns or 50, **{
            k: cfg[k] for k in ("bash_timeout", "wall_time", "output_chars") if k in cfg})
        reward = RewardOptions(partial=cfg.get("partial_reward", False),
                               format_penalty=cfg.get("format_penalty", 0.0),
                               grade=cfg.get("grade", True))
    except ValidationError as e:
        raise BadInput(f"bad swebox env_config: {_one_line(e)}") from None
    return Options(get_dialect(str(cfg.get("dialect") or "r2e")),
                   str(cfg.get("backend") or "docker"), limits, reward)


class SweboxTextEnv(BaseTextEnv):
    """One swebox episode as a skyrl_gym text environment (see the module docstring)."""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] = {},  # noqa: B006
                 *, defaults: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        extras = dict(extras or {})
        self.opts = options({**_as_dict(defaults), **_as_dict(env_config)},
                               extras.get("max_turns"))
        try:  # a row without a task fails here, at make()
            self.task = task_from_row(extras)
        except BadInput:
            if "instance" in extras:
                raise
            raise BadInput("this SkyRL row has no task: no `instance` column (columns: "
                           f"{', '.join(sorted(extras)) or 'none'})",
                           hint="write the rows with `swebox tasks convert --to skyrl`"
                           ) from None
        self.max_turns = self.opts.limits.max_steps
        self.env: SweEnv | None = None  # built by init(): make() starts nothing

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Start the episode; the prompt is swebox's (system + task), not the row's."""
        if self.env is None:
            o = self.opts
            self.env = SweEnv(self.task, dialect=o.dialect, backend=o.backend,
                              limits=o.limits, reward=o.reward)
        self.turns = 0
        try:
            obs = self.env.reset()
        except BaseException:
            self.env.close()
            raise
        system = f"{obs.system}\n\n{self.env.dialect.text_instructions()}"
        return [{"role": "system", "content": system},
                {"role": "user", "content": obs.text}], {}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        if self.env is None:
            raise BadInput("step() before init()", hint="SkyRL calls init(prompt) first")
        try:
            text, reward, done, info = self.env.step(action)
        except BaseException:
            self.env.close()
            raise
        self.turns += 1
        results = info.get("results", [])
        metadata: dict[str, Any] = {
            "steps": info["steps"], "calls": [r["name"] for r in results],
            "refused": any(r.get("refused") for r in results)}
        if done:
            metadata.update(self.env.summary())
        return BaseTextEnvStepOutput(
            observations=[] if done else [{"role": "user", "content": text}],
            reward=float(reward) if done else 0.0, done=done, metadata=metadata,
            postprocessed_action=None)

    def close(self) -> None:
        """Remove the episode's sandbox (an episode cut short by SkyRL is not graded)."""
        if self.env is not None:
            self.env.close()

    def get_metrics(self) -> dict[str, Any]:
        env = self.env
        if env is None:
            return {"reward": 0.0, "resolved": 0.0, "steps": 0, "refused_calls": 0}
        resolved = bool(env.verdict and env.verdict.resolved)
        return {"reward": float(env.reward), "resolved": float(resolved), "steps": env.steps,
                "refused_calls": env.refused}


def register(env_id: str = ENV_ID, config: Mapping[str, Any] | None = None) -> None:
    """Register `SweboxTextEnv` as `env_id` in skyrl_gym (again if it is already there):
    call it in the Ray entrypoint, before the trainer makes envs. `config` holds defaults
    for every env's options; a non-empty `env_config` passed to `make` overrides them."""
    from skyrl_gym.envs.registration import deregister

    if env_id in skyrl_gym.registry:
        deregister(env_id)
    defaults = _as_dict(config)
    options(defaults)  # unknown or bad options fail now, not at the first make()
    skyrl_gym.register(id=env_id, entry_point=ENTRY_POINT,
                       kwargs={"defaults": defaults} if defaults else {})
