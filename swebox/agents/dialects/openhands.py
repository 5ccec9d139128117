"""OpenHands CodeAct's dialect: `execute_bash`, `str_replace_editor`, `finish`, with the
texts of OpenHands' bash observations and of the openhands-aci editor (errors as
"ERROR:\\n..."). The schemas are those of mid-2025 OpenHands: `timeout` on execute_bash,
`finish {message}`; `security_risk`, which later releases require, is accepted and ignored.

A command that runs past its timeout is killed (swebox never leaves one running), so
`is_input` and the empty command answer as OpenHands does when nothing is running."""

from __future__ import annotations

from typing import Any

from swebox.agents.dialects.base import Dialect, ToolDef
from swebox.agents.dialects.r2e import EDITOR_DESCRIPTION
from swebox.agents.dialects.swebox import editor_params, editor_runner
from swebox.agents.tools.base import ToolContext
from swebox.agents.tools.editor import Editor, EditorTexts
from swebox.agents.tools.shell import run_bash

SYSTEM = ("You are OpenHands agent, a helpful AI assistant that can interact with a computer "
          "to solve tasks.")

INSTANCE = """<uploaded_files>
{workdir}
</uploaded_files>

I've uploaded a python code repository in the directory {workdir}. Consider the following \
issue description:

<issue_description>
{problem_statement}
</issue_description>

Can you help me implement the necessary changes to the repository so that the requirements \
specified in the <issue_description> are met?
I've already taken care of all changes to any of the test files described in the \
<issue_description>. This means you DON'T have to modify the testing logic or any of the \
tests in any way!
Your task is to make the minimal changes to non-test files in the {workdir} directory to \
ensure the <issue_description> is satisfied."""

TIMEOUT_MESSAGE = ("You may wait longer to see additional output by sending empty command '', "
                   "send other commands to interact with the current process, send keys "
                   "(\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before "
                   "sending your new command, or use the timeout parameter in execute_bash for "
                   "future commands.")

_P = "Invalid `path` parameter: {path}. "
TEXTS = EditorTexts(
    not_absolute=_P + "The path should be an absolute path, starting with `/`. Maybe you meant "
                 "{suggested}?",
    missing=_P + "The path {path} does not exist. Please provide a valid path.",
    exists=_P + "File already exists at: {path}. Cannot overwrite files using command "
           "`create`.",
    dir_only_view=_P + "The path {path} is a directory and only the `view` command can be used "
                  "on directories.",
    same_strings="Invalid `new_str` parameter: {new_str}. No replacement was performed. "
                 "`new_str` and `old_str` must be different.",
    bad_insert_line="Invalid `insert_line` parameter: {insert_line}. It should be within the "
                    "range of allowed values: {bounds}",
    range_start="Invalid `view_range` parameter: {view_range}. Its first element `{first}` "
                "should be within the range of lines of the file: {bounds}.",
    range_order="Invalid `view_range` parameter: {view_range}. Its second element `{last}` "
                "should be greater than or equal to the first element `{first}`.",
    range_end="Invalid `view_range` parameter: {view_range}. Its second element `{last}` "
              "should be smaller than the number of lines in the file: `{n}`.",
)


def _bash(ctx: ToolContext, a: dict[str, Any]) -> str:
    command = a.get("command")
    is_input = str(a.get("is_input", "false")).lower() == "true"
    if is_input:
        return "ERROR: No previous running command to interact with."
    if command is None or not str(command).strip():
        return "ERROR: No previous running command to retrieve logs from."
    r = run_bash(ctx, command, a.get("timeout"))
    out = r.output.rstrip("\n")
    if r.timed_out:
        return (f"{out}\n[The command timed out after {r.timeout:g} seconds. "
                f"{TIMEOUT_MESSAGE}]")
    return (f"{out}\n[The command completed with exit code {r.exit_code}.]\n"
            f"[Current working directory: {r.cwd}]\n"
            f"[Command finished with exit code {r.exit_code}]")


def _finish(ctx: ToolContext, a: dict[str, Any]) -> str:
    ctx.submitted = str(a.get("message") or "")
    return ""


def dialect() -> Dialect:
    editor = Editor(TEXTS, absolute_paths=True)
    bash_params = {"type": "object", "properties": {
        "command": {"type": "string", "description": "The bash command to execute. Can be "
                    "empty string to view additional logs when previous exit code is `-1`. Can "
                    "be `C-c` (Ctrl+C) to interrupt the currently running process. Note: You "
                    "can only execute one bash command at a time. If you need to run multiple "
                    "commands sequentially, you can use `&&` or `;` to chain them together."},
        "is_input": {"type": "string", "enum": ["true", "false"], "description": "If True, the "
                     "command is an input to the running process. If False, the command is a "
                     "bash command to be executed in the terminal. Default is False."},
        "timeout": {"type": "number", "description": "Optional. Sets a hard timeout in seconds "
                    "for the command execution. If not provided, the command will use the "
                    "default soft timeout behavior."}},
        "required": ["command"]}
    params = editor_params(workspace="/workspace")
    return Dialect(
        name="openhands",
        tools=[
            ToolDef("execute_bash", "Execute a bash command in the terminal within a "
                    "persistent shell session.", bash_params, _bash),
            ToolDef("str_replace_editor", EDITOR_DESCRIPTION, params, editor_runner(editor)),
            ToolDef("finish", "Signals the completion of the current task or conversation.",
                    {"type": "object", "properties": {"message": {
                        "type": "string", "description": "Final message to send to the user"}},
                     "required": ["message"]}, _finish, submits=True),
        ],
        bash_tool="execute_bash", bash_arg="command", system_prompt=SYSTEM,
        instance_prompt=INSTANCE, error_text=lambda m: f"ERROR:\n{m}",
        submit_args={"message": "Done."},
        unknown_tool="Tool {name} is not registered. (arguments: ...). Please check "
                     "the tool name and retry with an existing tool.")
