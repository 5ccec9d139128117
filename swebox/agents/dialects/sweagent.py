"""SWE-agent's dialect: `execute_bash {command}`, `str_replace_editor`, `submit`, with the
texts of SWE-agent's edit_anthropic editor and its observation templates (SWE-agent
tools/edit_anthropic, config/default.yaml). The bash tool is also answered under SWE-agent's
built-in name `bash`. The output of a command is shown raw, with no exit code, as SWE-agent
shows it; a command that printed nothing gets SWE-agent's "ran successfully" line."""

from __future__ import annotations

from typing import Any

from swebox.agents.dialects.base import Dialect, ToolDef
from swebox.agents.dialects.r2e import EDITOR_DESCRIPTION
from swebox.agents.dialects.swebox import editor_params, editor_runner
from swebox.agents.tools.base import ToolContext
from swebox.agents.tools.editor import Editor, EditorTexts
from swebox.agents.tools.shell import run_bash

SYSTEM = "You are a helpful assistant that can interact with a computer to solve tasks."

INSTANCE = """<uploaded_files>
{workdir}
</uploaded_files>
I've uploaded a python code repository in the directory {workdir}. Consider the following PR \
description:

<pr_description>
{problem_statement}
</pr_description>

Can you help me implement the necessary changes to the repository so that the requirements \
specified in the <pr_description> are met?
I've already taken care of all changes to any of the test files described in the \
<pr_description>. This means you DON'T have to modify the testing logic or any of the tests \
in any way!
Your task is to make the minimal changes to non-tests files in the {workdir} directory to \
ensure the <pr_description> is satisfied."""

TEXTS = EditorTexts(
    many_matches="No replacement was performed. Multiple occurrences of old_str `{old_str}` in "
                 "lines {lines}. Please ensure it is unique",
    same_strings="No replacement was performed, old_str `{old_str}` is the same as new_str "
                 "`{new_str}`.",
    missing_param="Parameter `{param}` is required for command: {command}",
    bad_command='Unrecognized command {command}. The allowed commands for the '
                'str_replace_editor tool are: "view", "create", "str_replace", "insert", '
                '"undo_edit"',
)

NO_OUTPUT = "Your command ran successfully and did not produce any output."
TIMEOUT = ("The command '{command}' was cancelled because it took more than {timeout:g} "
           "seconds. Please try a different command that completes more quickly. Note: A "
           "common source of this error is if the command is interactive or requires user "
           "input (it is impossible to receive user input in the current environment, so the "
           "command will never complete).")
NO_CALL = ("Your last output did not use any tool calls!\nPlease make sure your output "
           "includes exactly _ONE_ function call!")


def _bash(ctx: ToolContext, a: dict[str, Any]) -> str:
    command = a.get("command", a.get("cmd"))
    r = run_bash(ctx, command, a.get("timeout"))
    if r.timed_out:
        return TIMEOUT.format(command=command, timeout=r.timeout)
    return r.output if r.output.strip() else NO_OUTPUT


def _submit(ctx: ToolContext, a: dict[str, Any]) -> str:
    ctx.submitted = ""
    return "<<SWE_AGENT_SUBMISSION>>"


def dialect() -> Dialect:
    editor = Editor(TEXTS, absolute_paths=True)
    params = editor_params()
    return Dialect(
        name="sweagent",
        tools=[
            ToolDef("execute_bash", "runs the given command directly in bash",
                    {"type": "object", "properties": {"command": {
                        "type": "string", "description": "The bash command to execute."}},
                     "required": ["command"]}, _bash),
            ToolDef("str_replace_editor", EDITOR_DESCRIPTION, params, editor_runner(editor)),
            ToolDef("submit", "submits the current file", {"type": "object", "properties": {},
                                                            "required": []},
                    _submit, submits=True),
        ],
        bash_tool="execute_bash", bash_arg="command", system_prompt=SYSTEM,
        instance_prompt=INSTANCE, format_error=NO_CALL, aliases={"bash": "execute_bash"},
        unknown_tool="Your action could not be parsed properly: Command '{name}' not found.")
