"""A dialect: the names, argument schemas and observation texts one agent scaffold uses for
its tools, mapped onto swebox's one implementation of each tool (swebox.agents.tools)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swebox.agents.actions import ToolCall
from swebox.agents.tools.base import ToolContext, ToolError

Runner = Callable[[ToolContext, dict[str, Any]], str]


@dataclass
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Runner
    submits: bool = False  # calling it ends the episode
    # Applied to every text the tool returns, errors included (R2E-Gym's "Execution output
    # of [name]:" header, say). Errors first go through the dialect's `error_text`.
    wrap: Callable[[str], str] | None = None

    def schema(self) -> dict[str, Any]:
        """The OpenAI `tools` entry."""
        return {"type": "function", "function": {"name": self.name,
                                                 "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass
class Dialect:
    name: str
    tools: list[ToolDef]
    bash_tool: str  # the tool a fenced bash block becomes, and its argument
    bash_arg: str
    system_prompt: str
    instance_prompt: str  # formatted with problem_statement and workdir
    error_text: Callable[[str], str] = field(default=lambda m: m)
    unknown_tool: str = ("Unknown tool `{name}`. The available tools are: {names}.")
    format_error: str = ("Your last message contained no valid tool call ({why}). Call one of "
                         "the tools: {names}.")
    # Models without tool calling get the tools described in text and answer in this form.
    text_form: str = "xml"  # "xml" (R2E's <function=...>) or "bash_block"
    submit_args: dict[str, Any] = field(default_factory=dict)  # what a plain submit sends
    aliases: dict[str, str] = field(default_factory=dict)  # other names models use for tools

    def tool(self, name: str) -> ToolDef | None:
        name = self.aliases.get(name, name)
        return next((t for t in self.tools if t.name == name), None)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools]

    @property
    def names(self) -> str:
        return ", ".join(t.name for t in self.tools)

    def call(self, ctx: ToolContext, call: ToolCall) -> tuple[str, bool, bool]:
        """Run one call: (observation, submitted, refused). A refusal (unknown tool, bad
        arguments, a ToolError) is an observation too, never an exception."""
        if call.error:
            return self.error_text(f"{call.error}. Resend the call with a JSON object of "
                                   f"arguments."), False, True
        tool = self.tool(call.name)
        if tool is None:
            return self.error_text(self.unknown_tool.format(name=call.name, names=self.names)
                                   ), False, True
        args = {k: v for k, v in call.arguments.items() if v is not None}
        wrap = tool.wrap or (lambda x: x)
        try:
            text = tool.run(ctx, args)
        except ToolError as e:
            return wrap(self.error_text(str(e))), False, True
        return wrap(text), tool.submits, False

    def text_instructions(self) -> str:
        """The tools described for a model that answers in text instead of tool calls."""
        if self.text_form == "bash_block":
            return ("Answer with exactly one bash code block (```bash ... ```) per message; "
                    "it runs in the repository's shell. To finish, run "
                    "`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`.")
        lines = ["You can call these functions. Write one call per message as:",
                 "<function=NAME>", "<parameter=PARAM>value</parameter>", "</function>", ""]
        for t in self.tools:
            props = t.parameters.get("properties", {})
            req = set(t.parameters.get("required", []))
            lines.append(f"---- BEGIN FUNCTION: {t.name} ----")
            lines.append(t.description.strip())
            for p, spec in props.items():
                flag = "required" if p in req else "optional"
                lines.append(f"  {p} ({spec.get('type', 'string')}, {flag}): "
                             f"{spec.get('description', '').strip()}")
            lines.append(f"---- END FUNCTION: {t.name} ----")
        return "\n".join(lines)


def arg(args: dict[str, Any], *names: str) -> Any:
    """The first argument present under any of `names` (dialects spell them differently)."""
    for n in names:
        if n in args:
            return args[n]
    return None


def int_list(value: Any) -> list[int] | None:
    """A view_range given as a list, or as text such as "[1, 20]" (text actions)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ToolError(f"Invalid `view_range`: {value!r}; give two integers like "
                            "[1, 40].") from None
    if not isinstance(value, list):
        raise ToolError(f"Invalid `view_range`: {value!r}; give two integers like [1, 40].")
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise ToolError(f"Invalid `view_range`: {value!r}; give two integers like "
                        "[1, 40].") from None
