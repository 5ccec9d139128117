"""Reading actions: OpenAI tool calls, R2E's text form, mini-swe-agent's bash block; and the
context budget. No sandbox needed."""

from __future__ import annotations

import json

from swebox.agents.actions import ToolCall, parse_action
from swebox.agents.context import fit_budget
from swebox.agents.dialects import DIALECTS, get_dialect


def test_openai_tool_calls_in_an_assistant_message() -> None:
    msg = {"role": "assistant", "content": "let me look",
           "tool_calls": [{"id": "c1", "type": "function",
                           "function": {"name": "bash", "arguments": '{"command": "ls"}'}},
                          {"id": "c2", "type": "function",
                           "function": {"name": "submit", "arguments": ""}}]}
    p = parse_action(msg)
    assert [c.name for c in p.calls] == ["bash", "submit"]
    assert p.calls[0].arguments == {"command": "ls"} and p.calls[0].id == "c1"
    assert p.calls[1].arguments == {} and p.text == "let me look"
    assert json.loads(p.calls[0].as_openai()["function"]["arguments"]) == {"command": "ls"}


def test_malformed_arguments_become_a_call_with_an_error() -> None:
    p = parse_action([{"id": "x", "function": {"name": "bash", "arguments": '{"cmd": "ls", '}}])
    assert p.calls[0].error and "not valid JSON" in p.calls[0].error
    p = parse_action({"function": {"name": "bash", "arguments": "[1, 2]"}})
    assert p.calls[0].error and "JSON object" in p.calls[0].error


def test_r2e_text_form() -> None:
    text = ("I'll edit it.\n<function=file_editor>\n<parameter=command>str_replace</parameter>\n"
            "<parameter=path>/testbed/a.py</parameter>\n<parameter=old_str>    x = 1\n"
            "</parameter>\n<parameter=new_str>    x = 2\n</parameter>\n</function>")
    p = parse_action(text, "execute_bash", "cmd")
    (call,) = p.calls
    assert call.name == "file_editor" and call.form == "xml"
    assert call.arguments["old_str"] == "    x = 1"  # indentation kept, newlines trimmed
    assert call.arguments["new_str"] == "    x = 2"


def test_mini_swe_agent_bash_block() -> None:
    p = parse_action("Run it:\n```mswea_bash_command\nls -la\n```", "execute_bash", "cmd")
    assert p.calls[0].name == "execute_bash" and p.calls[0].arguments == {"cmd": "ls -la"}
    assert p.calls[0].form == "bash_block"
    two = parse_action("```bash\nls\n```\n```bash\npwd\n```")
    assert not two.calls and "2 bash blocks" in (two.format_error or "")
    none = parse_action("I am thinking.")
    assert not none.calls and none.format_error == "no action found"


def test_tool_call_objects_pass_through() -> None:
    call = ToolCall(name="bash", arguments={"command": "true"})
    assert parse_action(call).calls == [call]


def test_every_dialect_has_one_submit_tool_and_valid_schemas() -> None:
    for name in DIALECTS:
        d = get_dialect(name)
        assert sum(t.submits for t in d.tools) == 1, name
        assert d.tool(d.bash_tool) is not None, name
        for schema in d.schemas():
            fn = schema["function"]
            assert schema["type"] == "function" and fn["parameters"]["type"] == "object"
            assert set(fn["parameters"].get("required", [])) <= set(
                fn["parameters"]["properties"]), (name, fn["name"])


def test_dialect_names_match_the_scaffolds() -> None:
    names = {n: [t.name for t in get_dialect(n).tools] for n in DIALECTS}
    assert names["r2e"] == ["file_editor", "execute_bash", "search", "finish"]
    assert names["sweagent"] == ["execute_bash", "str_replace_editor", "submit"]
    assert names["openhands"] == ["execute_bash", "str_replace_editor", "finish"]
    assert names["swebox"] == ["bash", "str_replace_editor", "search", "submit"]
    r2e_bash = get_dialect("r2e").tool("execute_bash")
    assert r2e_bash is not None and r2e_bash.parameters["required"] == ["cmd"]


def test_context_budget_elides_old_observations_and_marks_the_cut() -> None:
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i in range(20):
        msgs.append({"role": "assistant", "content": f"step {i}"})
        msgs.append({"role": "tool", "content": "x" * 1000, "tool_call_id": str(i)})
    cut = fit_budget(msgs, 8000)
    assert sum(len(str(m["content"])) for m in cut) <= 8000
    assert cut[:2] == msgs[:2] and cut[-6:] == msgs[-6:]
    assert "elided to fit the context budget" in cut[3]["content"]
    assert msgs[3]["content"] == "x" * 1000  # the caller's list is not changed
    assert fit_budget(msgs, 10**6) is msgs
