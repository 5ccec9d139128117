"""Actions as models send them, turned into tool calls.

Three forms arrive: OpenAI tool calls (in an assistant message, as a list, or one by one);
text in R2E-Gym's `<function=name><parameter=p>value</parameter></function>` form; and
mini-swe-agent's one fenced bash block. A malformed action (arguments that are not JSON, no
action at all, two bash blocks) becomes a call with `error` set: the env answers it with the
dialect's format-error text and the episode goes on.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

_FUNCTION = re.compile(r"<function\s*=\s*([^>\s]+)\s*>(.*?)(?:</function>|$)", re.S)
_PARAMETER = re.compile(r"<parameter\s*=\s*([^>\s]+)\s*>(.*?)</parameter>", re.S)
# mini-swe-agent's action regex: one fenced block tagged bash (or its own tag).
_BASH_BLOCK = re.compile(r"```(?:bash|mswea_bash_command)\s*\n(.*?)\n```", re.S)


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: "call_" + secrets.token_hex(8))
    raw_arguments: str = ""  # as the model sent them (JSON text for OpenAI calls)
    error: str | None = None  # why the call could not be read; the env reports it
    form: str = "tool_call"  # "tool_call", "xml" (R2E text), "bash_block" (mini-swe-agent)

    def as_openai(self) -> dict[str, Any]:
        """The OpenAI `tool_calls` entry (arguments as a JSON string)."""
        args = self.raw_arguments or json.dumps(self.arguments, ensure_ascii=False)
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": args}}


@dataclass
class ParsedAction:
    calls: list[ToolCall]
    text: str = ""  # the assistant's own words (content), kept in the trajectory
    format_error: str | None = None  # set when no call could be read at all


def _from_openai(tc: Any) -> ToolCall:
    if hasattr(tc, "model_dump"):  # an openai SDK object
        tc = tc.model_dump()
    if not isinstance(tc, dict):
        return ToolCall(name="", error=f"a tool call must be an object, got {type(tc).__name__}")
    fn: dict[str, Any] = tc["function"] if isinstance(tc.get("function"), dict) else tc
    name = str(fn.get("name") or "")
    call_id = str(tc.get("id") or "call_" + secrets.token_hex(8))
    raw = fn.get("arguments", {})
    if isinstance(raw, dict):
        return ToolCall(name=name, arguments=raw, id=call_id, raw_arguments=json.dumps(raw))
    raw_s = "" if raw is None else str(raw)
    if not raw_s.strip():
        return ToolCall(name=name, arguments={}, id=call_id, raw_arguments=raw_s)
    try:
        args = json.loads(raw_s)
    except json.JSONDecodeError as e:
        return ToolCall(name=name, id=call_id, raw_arguments=raw_s,
                        error=f"the arguments of {name or 'the call'} are not valid JSON "
                              f"({e.msg} at character {e.pos})")
    if not isinstance(args, dict):
        return ToolCall(name=name, id=call_id, raw_arguments=raw_s,
                        error=f"the arguments of {name or 'the call'} must be a JSON object")
    return ToolCall(name=name, arguments=args, id=call_id, raw_arguments=raw_s)


def parse_text(text: str, bash_tool: str, bash_arg: str) -> ParsedAction:
    """An action written as text: R2E's function form first, else one fenced bash block."""
    calls = []
    for m in _FUNCTION.finditer(text):
        params = {k.strip(): v.strip("\n") for k, v in _PARAMETER.findall(m.group(2))}
        calls.append(ToolCall(name=m.group(1).strip(), arguments=params, form="xml",
                              raw_arguments=json.dumps(params)))
    if calls:
        return ParsedAction(calls=calls[:1], text=text)  # R2E runs one function per turn
    blocks = _BASH_BLOCK.findall(text)
    if len(blocks) == 1:
        args = {bash_arg: blocks[0].strip()}
        return ParsedAction(calls=[ToolCall(name=bash_tool, arguments=args, form="bash_block",
                                            raw_arguments=json.dumps(args))], text=text)
    why = "no action found" if not blocks else f"found {len(blocks)} bash blocks, expected one"
    return ParsedAction(calls=[], text=text, format_error=why)


def parse_action(action: Any, bash_tool: str = "bash", bash_arg: str = "command") -> ParsedAction:
    """Tool calls from whatever form `action` has (see the module docstring)."""
    if isinstance(action, ToolCall):
        return ParsedAction(calls=[action])
    if isinstance(action, ParsedAction):
        return action
    if hasattr(action, "model_dump"):  # an openai ChatCompletionMessage
        action = action.model_dump()
    if isinstance(action, str):
        return parse_text(action, bash_tool, bash_arg)
    if isinstance(action, list):
        return ParsedAction(calls=[_from_openai(tc) for tc in action])
    if isinstance(action, dict):
        if "tool_calls" in action or action.get("role") == "assistant":
            content = action.get("content") or ""
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            tcs = action.get("tool_calls") or []
            if tcs:
                return ParsedAction(calls=[_from_openai(tc) for tc in tcs], text=content)
            return parse_text(content, bash_tool, bash_arg)
        return ParsedAction(calls=[_from_openai(action)])
    return ParsedAction(calls=[], format_error=f"cannot read an action of type "
                                               f"{type(action).__name__}")
