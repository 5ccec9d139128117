"""verl: swebox's tools as verl `BaseTool`s for its ToolAgentLoop (verl 0.9.1).

    from swebox.integrations.verl import write_tool_config, convert_rllm_parquet
    write_tool_config("swebox_tools.yaml", dialect="swebox", max_steps=50)
    convert_rllm_parquet("train.rllm.parquet", "train.parquet", dialect="swebox")

    # verl's config
    actor_rollout_ref.rollout.multi_turn.enable=true
    actor_rollout_ref.rollout.multi_turn.tool_config_path=swebox_tools.yaml
    actor_rollout_ref.rollout.multi_turn.max_tool_response_length=16000   # default 256 chars
    actor_rollout_ref.rollout.multi_turn.max_assistant_turns=50
    custom_reward_function.path=pkg://swebox.integrations.verl
    custom_reward_function.name=compute_score

The tools (`SweboxBashTool`, `SweboxEditorTool`, `SweboxSearchTool`, `SweboxSubmitTool`, or
`SweboxTool` with `config.tool` naming any tool of the dialect) take their names, schemas and
observation texts from a swebox dialect (`swebox`, `r2e`, `sweagent`, `openhands`); `execute`
runs the dialect's tool (`ToolDef.run`, through `SweEnv.step`) in the trajectory's sandbox.

verl creates, executes and releases a tool instance on every call, so the sandbox lives in
`swebox.integrations.verl_state`'s registry, keyed by the trajectory: verl's `AgentData`
(its `request_id`, and the object itself, passed to `execute` as `agent_data`), or without
one `create_kwargs["trajectory_id"]`. The first call opens it from `create_kwargs["task"]`;
`release` never ends it. It ends on the submit tool (graded by swebox's grader: the reward is
what that call returns, the tool reward verl records in `tool_rewards`, which `compute_score`
hands to the trainer), at the step or wall-time limit, or when verl drops it: its
`AgentData` is garbage-collected, or no call came for `lease` seconds; those close ungraded.

Rows: `--to rllm` rows plus `extra_info.tools_kwargs` (`{tool: {"create_kwargs": {"task":
<swebox task JSON>}}}`), `agent_name: "tool_agent"` and the dialect's prompt (`verl_row`).

Nothing here imports verl until a tool class is asked for (verl's import pulls torch, ray and
tensordict): the config writer and the row helpers run without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import uuid4

from swebox.agents.dialects import Dialect, ToolDef, get_dialect
from swebox.errors import BadInput
from swebox.integrations.common import task_from_row
from swebox.integrations.verl_state import TrajectoryOptions, read_task, registry
from swebox.tasks.model import Task

EDITORS = ("str_replace_editor", "file_editor")
ROLES = {"SweboxBashTool": "bash", "SweboxEditorTool": "editor", "SweboxSearchTool": "search",
         "SweboxSubmitTool": "submit", "SweboxTool": None}


def role_tool(dialect: Dialect, role: str) -> ToolDef | None:
    """The dialect's tool that plays `role` (bash, editor, search, submit)."""
    for t in dialect.tools:
        if (role == "bash" and t.name == dialect.bash_tool) or (role == "submit" and t.submits) \
                or (role == "editor" and t.name in EDITORS) or (role == t.name == "search"):
            return t
    return None


def _role_of(dialect: Dialect, t: ToolDef) -> str:
    return next((r for r in ("bash", "editor", "search", "submit")
                 if role_tool(dialect, r) is t), "")


def resolve_tool(options: TrajectoryOptions, role: str | None) -> ToolDef:
    d = get_dialect(options.dialect)
    t = d.tool(options.tool) if options.tool else (role_tool(d, role) if role else None)
    if t is None:
        what = f"tool {options.tool!r}" if options.tool else f"a {role or '?'} tool"
        raise BadInput(f"the {d.name} dialect has no {what}",
                       hint=f"its tools: {d.names}; set `tool:` in the tool's config")
    return t


def trajectory_key(agent_data: Any, create_kwargs: dict[str, Any]) -> tuple[str, Any]:
    """(key, owner) of the trajectory a call belongs to: verl's AgentData (request ids are
    unique per running trajectory, but `det-<n>` ones recur across batches, so the object's
    identity is part of the key), else an explicit `create_kwargs["trajectory_id"]`."""
    rid = getattr(agent_data, "request_id", None)
    if rid:
        return f"{rid}@{id(agent_data):x}", agent_data
    if create_kwargs.get("trajectory_id"):
        return str(create_kwargs["trajectory_id"]), None
    raise BadInput("this tool call belongs to no trajectory",
                   hint="verl's ToolAgentLoop passes agent_data; other callers give "
                        "create_kwargs={'trajectory_id': ..., 'task': ...}")


def find_task(create_kwargs: dict[str, Any], agent_data: Any = None) -> Task:
    """The task from this tool's create_kwargs, else from any tool's in the trajectory's
    `tools_kwargs` (so a row may carry the task under one tool only)."""
    try:
        return read_task(create_kwargs)
    except BadInput:
        for kw in (getattr(agent_data, "tools_kwargs", None) or {}).values():
            ck = kw.get("create_kwargs") if isinstance(kw, dict) else None
            if ck and ck is not create_kwargs:
                try:
                    return read_task(ck)
                except BadInput:
                    continue
        raise


# -- the tool classes (built on verl's BaseTool when first asked for) --------------------------
_CLASSES: dict[str, type] = {}


def _build(name: str) -> type:
    try:
        from verl.tools.base_tool import BaseTool
        from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
        from verl.utils.rollout_trace import rollout_trace_op
    except ImportError as e:
        raise ImportError(f"swebox.integrations.verl.{name} needs verl (0.9.1): "
                          f"pip install verl ({e})") from e

    role = ROLES[name]

    class Tool(BaseTool):
        def __init__(self, config: dict[str, Any], tool_schema: Any = None) -> None:
            self.options = TrajectoryOptions.model_validate(dict(config or {}))
            self.tooldef = resolve_tool(self.options, role)
            self._instances: dict[str, dict[str, Any]] = {}
            super().__init__(config, tool_schema)

        def get_openai_tool_schema(self) -> Any:
            return OpenAIFunctionToolSchema.model_validate(self.tooldef.schema())

        async def create(self, instance_id: str | None = None, **kwargs: Any
                         ) -> tuple[str, Any]:
            iid = instance_id or uuid4().hex
            ck = kwargs.get("create_kwargs")
            self._instances[iid] = {"create_kwargs": dict(ck) if isinstance(ck, dict) else {}}
            return iid, ToolResponse()

        @rollout_trace_op
        async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
                          ) -> tuple[Any, float, dict[str, Any]]:
            inst = self._instances.setdefault(instance_id, {"create_kwargs": {}})
            ck, agent_data = inst["create_kwargs"], kwargs.get("agent_data")
            key, owner = trajectory_key(agent_data, ck)
            inst["key"] = key
            res = await registry().acall(key, owner, lambda: find_task(ck, agent_data),
                                         self.options, self.tooldef.name,
                                         {} if parameters is None else parameters)
            metrics: dict[str, Any] = {"trajectory": key, "done": res.done}
            if res.done:
                verdict = res.info.get("verdict") or {}
                metrics.update(exit_reason=res.info.get("exit_reason"),
                               resolved=bool(verdict.get("resolved")),
                               steps=res.info.get("steps"))
            return ToolResponse(text=res.text), float(res.reward), metrics

        async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
            """The trajectory's reward once it has ended (0.0 before)."""
            key = self._instances.get(instance_id, {}).get("key")
            summary = registry().summary(key) if key else None
            return float((summary or {}).get("reward") or 0.0)

        async def release(self, instance_id: str, **kwargs: Any) -> None:
            self._instances.pop(instance_id, None)  # the trajectory goes on

    Tool.__name__ = Tool.__qualname__ = name
    Tool.__module__ = __name__
    Tool.__doc__ = (f"A swebox dialect's {role or 'named'} tool as a verl BaseTool "
                    "(swebox.integrations.verl).")
    return Tool


def __getattr__(name: str) -> Any:
    if name in ROLES:
        if name not in _CLASSES:
            _CLASSES[name] = _build(name)
        return _CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the tool config verl loads -----------------------------------------------------------------
def tool_names(dialect: str = "swebox", tools: Iterable[str] | None = None) -> list[str]:
    d = get_dialect(dialect)
    names = [t.name for t in d.tools]
    if tools is None:
        return names
    wanted = [d.aliases.get(n, n) for n in tools]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise BadInput(f"the {d.name} dialect has no tool {unknown[0]!r}",
                       hint=f"its tools: {d.names}")
    return wanted


def tool_config(dialect: str = "swebox", tools: Iterable[str] | None = None,
                **options: Any) -> dict[str, Any]:
    """The `tools:` document verl's `initialize_tools_from_config` reads: one entry per tool
    of the dialect (or of `tools`), each with the same trajectory options (TrajectoryOptions:
    backend, max_steps, wall_time, bash_timeout, output_chars, partial_reward,
    format_penalty, grade, lease, sandbox_options)."""
    opts = TrajectoryOptions.model_validate({**options, "dialect": dialect})
    d = get_dialect(opts.dialect)
    config = opts.model_dump(exclude={"tool"}, exclude_defaults=True)
    config = {"type": "native", "dialect": d.name, **config}
    entries = []
    for name in tool_names(d.name, tools):
        t = d.tool(name)
        assert t is not None
        role = _role_of(d, t)
        cls = next((c for c, r in ROLES.items() if r == role and role), "SweboxTool")
        entries.append({"class_name": f"{__name__}.{cls}",
                        "config": {**config, "tool": t.name}, "tool_schema": t.schema()})
    return {"tools": entries}


def write_tool_config(path: str | Path, dialect: str = "swebox",
                      tools: Iterable[str] | None = None, **options: Any) -> Path:
    """Write the tool config YAML for `actor_rollout_ref.rollout.multi_turn.tool_config_path`
    (JSON values in YAML block form: no YAML library needed to write it)."""
    doc = tool_config(dialect, tools, **options)
    lines = ["# swebox tools for verl's ToolAgentLoop (swebox.integrations.verl.write_tool_config)",
             "# Also set: multi_turn.enable=true, multi_turn.max_tool_response_length (default",
             "# 256 characters) and a reward function that reads tool_rewards (compute_score).",
             "tools:"]
    for e in doc["tools"]:
        lines.append(f"  - class_name: {e['class_name']}")
        lines.append(f"    config: {json.dumps(e['config'], ensure_ascii=False)}")
        lines.append(f"    tool_schema: {json.dumps(e['tool_schema'], ensure_ascii=False)}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


# -- rows -------------------------------------------------------------------------------------
def tools_kwargs(task: Any, dialect: str = "swebox", tools: Iterable[str] | None = None,
                 once: bool = False) -> dict[str, dict[str, dict[str, str | None]]]:
    """A row's `extra_info.tools_kwargs`: the task (swebox JSON) as every tool's create_kwargs
    (whichever tool is called first opens the trajectory), or with `once` under the first
    tool only (a row a quarter of the size; the others find it through verl's AgentData)."""
    text = task_from_row(task).model_dump_json()
    names = tool_names(dialect, tools)
    return {name: {"create_kwargs": {"task": text if i == 0 or not once else None}}
            for i, name in enumerate(names)}


def prompt_messages(task: Task, dialect: str = "swebox") -> list[dict[str, str]]:
    """The dialect's system prompt and instance prompt, as the agent scaffold shows them."""
    d = get_dialect(dialect)
    return [{"role": "system", "content": d.system_prompt.format(workdir=task.workdir)},
            {"role": "user", "content": d.instance_prompt.format(
                problem_statement=task.problem_statement, workdir=task.workdir)}]


def verl_row(row: dict[str, Any], dialect: str = "swebox", tools: Iterable[str] | None = None,
             prompt: bool = True, agent_name: str = "tool_agent", once: bool = False
             ) -> dict[str, Any]:
    """A `--to rllm` row made ready for verl's ToolAgentLoop: `extra_info.tools_kwargs` and
    `need_tools_kwargs`, `agent_name`, and (`prompt`) the dialect's prompt in place of the
    bare problem statement. The row's other columns stay."""
    extra = row.get("extra_info")
    if isinstance(extra, str):
        extra = json.loads(extra)
    if not isinstance(extra, dict):
        raise BadInput("the row has no extra_info", hint="use rows of `--to rllm`")
    task = task_from_row(extra)
    out = dict(row)
    out["extra_info"] = {**extra, "tools_kwargs": tools_kwargs(task, dialect, tools, once),
                         "need_tools_kwargs": True}
    out["agent_name"] = agent_name
    if prompt:
        out["prompt"] = prompt_messages(task, dialect)
    return out


def convert_rllm_parquet(src: str | Path, dst: str | Path, dialect: str = "swebox",
                         tools: Iterable[str] | None = None, prompt: bool = True,
                         once: bool = False, batch_rows: int = 256) -> int:
    """Rewrite a `--to rllm` parquet as verl ToolAgentLoop rows (`verl_row`), streamed by
    row group. Returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(str(src))
    n = 0
    writer = None
    try:
        for batch in reader.iter_batches(batch_size=batch_rows):
            rows = [verl_row(r, dialect, tools, prompt, once=once) for r in batch.to_pylist()]
            table = pa.Table.from_pylist(rows)
            if writer is None:
                writer = pq.ParquetWriter(str(dst), table.schema)
            writer.write_table(table.cast(writer.schema))
            n += len(rows)
    finally:
        if writer is not None:
            writer.close()
    return n


# -- the reward verl's reward manager asks for ----------------------------------------------
def compute_score(data_source: Any = None, solution_str: Any = None, ground_truth: Any = None,
                  extra_info: dict[str, Any] | None = None, **kwargs: Any) -> float:
    """`custom_reward_function`: the trajectory's graded reward, which the call that ended it
    returned as its tool reward (every other call returns 0.0), from `tool_rewards`."""
    rewards = (extra_info or {}).get("tool_rewards")
    return float(sum(float(r) for r in rewards)) if rewards is not None else 0.0
