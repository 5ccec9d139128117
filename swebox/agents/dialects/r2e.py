"""R2E-Gym's dialect: `file_editor`, `execute_bash {cmd}`, `search`, `finish`, with its
observation texts (R2E-Gym src/r2egym/agenthub: tools/, observation/observation.py).

Kept as R2E-Gym has it: `Exit code: ...` headers with "Error: Exit code N" and -1 on a
timeout, [STDOUT]/[STDERR] sections, 80-line observations cut to 40 + 40 lines, blocked first
words (cd, pip, ...), the `.py`-only file view with its doubled "ERROR: ERROR:", directory
views and searches over *.py files. Not kept: the condensed view of .py files over 110 lines
(the whole file is shown; use view_range), and the "Steps Remaining" note its loop appends.
"""

from __future__ import annotations

import secrets
from typing import Any

from swebox.agents.dialects.base import Dialect, ToolDef
from swebox.agents.dialects.swebox import editor_params, editor_runner
from swebox.agents.tools.base import ToolContext, ToolError, cap
from swebox.agents.tools.editor import Editor, EditorTexts
from swebox.agents.tools.search import search_text
from swebox.agents.tools.shell import run_bash

SYSTEM = """You are a programming agent who is provided a github issue and repository bash \
environment and is tasked to solve certain tasks (e.g., file localization, testcase \
generation, code repair and editing etc) to resolve the issue."""

INSTANCE = """Consider the following github issue:
<github_issue>
{problem_statement}
</github_issue>

Can you help me implement the necessary changes to the repository to fix the <github_issue>?
I've already taken care of all changes to any of the test files described in the \
<github_issue>. This means you DON'T have to modify the testing logic or any of the tests in \
any way! Your task is to make the minimal changes to non-tests files in the {workdir} \
directory to ensure the <github_issue> is satisfied."""

CONTINUE_MSG = ("\nYou forgot to use a function call in your response. \nYOU MUST USE A "
                "FUNCTION CALL IN EACH RESPONSE.\n\nIMPORTANT: YOU SHOULD NEVER ASK FOR HUMAN "
                "HELP.\n")
BLOCKED = ("cd", "ipython", "jupyter", "pip", "nohup")
KEEP_LINES = 40

TEXTS = EditorTexts(
    view_file="Here's the result of running `cat -n` on the file: {path}:\n{body}",
    view_dir="Here's the files and directories up to 2 levels deep in {path}, excluding "
             "hidden:\n{body}",
    created="File created at {path}. Here's the result of running `cat -n` on {path}:\n{body}\n"
            "Review the file and make sure that it is as expected. Edit the file if necessary.",
    no_match="No occurrences of '{old_str}' found in {path} for replacement.",
    many_matches="Multiple occurrences of '{old_str}' found in {path}. Please ensure it is "
                 "unique before using str_replace.",
    missing="The path '{path}' does not exist.",
    exists="File already exists at: {path}. Cannot overwrite with 'create'.",
    dir_only_view="The path '{path}' is a directory. Only 'view' can be used on directories.",
    no_history="No previous edits found for {path} to undo.",
    missing_param="Missing required parameter '{param}' for '{command}'.",
    bad_command="Unrecognized command '{command}'. Allowed commands: view, create, "
                "str_replace, insert, undo_edit.",
    bad_insert_line="Invalid insert_line {insert_line}. Must be in {bounds}.",
    range_shape="Invalid view_range {view_range}: start line must be in [1, {n}]",
    range_start="Invalid view_range {view_range}: start line must be in [1, {n}]",
    range_end="Invalid view_range {view_range}: end must be >= start and <= {n}, or -1 to view "
              "until end.",
    range_order="Invalid view_range {view_range}: end must be >= start and <= {n}, or -1 to "
                "view until end.",
    view_not_py="ERROR: Viewing non-Python files is disallowed for saving context. File "
                "'{name}' is not a .py file.",
)


def _header(name: str) -> Any:
    return lambda text: f"Execution output of [{name}]:\n{text}"


def _middle_cut(text: str) -> str:
    lines = text.split("\n")
    if len(lines) <= 2 * KEEP_LINES:
        return text
    bar = "-" * 50
    return "\n".join([*lines[:KEEP_LINES], bar,
                      "<Observation truncated in middle for saving context>", bar,
                      *lines[-KEEP_LINES:]])


def _bash(ctx: ToolContext, a: dict[str, Any]) -> str:
    cmd = a.get("cmd", a.get("command"))
    if cmd is None or not str(cmd).strip():
        raise ToolError("Missing required parameter 'cmd' for 'execute_bash'.")
    words = str(cmd).split()
    if words and words[0] in BLOCKED:
        out = (f"Bash command '{words[0]}' is not allowed. Please use a different command or "
               "tool.")
        return f"Exit code: Error: Exit code 1\nExecution output of [execute_bash]:\n{out}"
    # R2E-Gym runs each command in a fresh `sh -c` (nothing persists, `exit` ends only the
    # command): a subshell of the session does the same. stdout and stderr are shown apart,
    # so stderr goes to a file of the tools'.
    err = f"/tmp/.swebox-stderr-{secrets.token_hex(4)}"
    r = run_bash(ctx, f"(\n{cmd}\n) 2>{err}", a.get("timeout"))
    stderr = cap(ctx.quiet(f"cat {err} 2>/dev/null; rm -f {err}").output,
                 ctx.limits.output_chars)
    if r.timed_out:
        code, out = "-1", f"The command took too long to execute (>{r.timeout:g}s)"
        note = r.output.rfind("\n[swebox: ")  # the sandbox was cleared after it: say so
        if note >= 0:
            out += r.output[note:]
    else:
        body = f"[STDOUT]\n\n{r.output.strip()} \n\n[STDERR]\n\n{stderr.strip()}\n"
        if r.exit_code == 0:
            code, out = "0", body
        else:
            code, out = f"Error: Exit code {r.exit_code}", f"Error executing command:\n\n{body}"
    return f"Exit code: {code}\nExecution output of [execute_bash]:\n{_middle_cut(out)}"


def _search(ctx: ToolContext, a: dict[str, Any]) -> str:
    term = a.get("search_term")
    res = search_text(ctx, term, a.get("path") or ".", include="*.py")
    if res.is_file:
        rows = [f"{n}:{line}" for n, line in res.lines]
        return f'Matches for "{term}" in {res.path}:\n' + "\n".join(rows)
    if not res.files:
        return f'No matches found for "{term}" in {res.path}'
    if len(res.files) > 100:
        return (f'More than {len(res.files)} files matched for "{term}" in {res.path}. '
                "Please narrow your search.")
    rows = [f"{name} ({count} matches)" for name, count in res.files]
    return (f'Found {res.total} matches for "{term}" in {res.path}:\n' + "\n".join(rows)
            + f'\nEnd of matches for "{term}" in {res.path}')


def _finish(ctx: ToolContext, a: dict[str, Any]) -> str:
    ctx.submitted = str(a.get("result") or "")
    return "<<< Finished >>>"


EDITOR_DESCRIPTION = """Custom editing tool for viewing, creating and editing files
* State is persistent across command calls and discussions with the user
* If `path` is a file, `view` displays the result of applying `cat -n`. If `path` is a \
directory, `view` lists non-hidden files and directories up to 2 levels deep
* The `create` command cannot be used if the specified `path` already exists as a file
* If a `command` generates a long output, it will be truncated and marked with \
`<response clipped>`
* The `undo_edit` command will revert the last edit made to the file at `path`

Notes for using the `str_replace` command:
* The `old_str` parameter should match EXACTLY one or more consecutive lines from the original \
file. Be mindful of whitespaces!
* If the `old_str` parameter is not unique in the file, the replacement will not be performed. \
Make sure to include enough context in `old_str` to make it unique
* The `new_str` parameter should contain the edited lines that should replace the `old_str`"""


def dialect() -> Dialect:
    editor = Editor(TEXTS, absolute_paths=False, tool_name="file_editor", view_sep=" ",
                    dir_find="-not -path '*/.*' \\( -type d -o -name '*.py' \\)")
    params = editor_params(
        "The command to run.",
        insert_line={"type": "integer", "description": "Required for the `insert` command. "
                     "The `new_str` will be inserted AFTER the line specified."},
        concise={"type": "boolean", "description": "Optional for the `view` command. If "
                 "`True`, displays a concise skeletal view of the file."})
    return Dialect(
        name="r2e",
        tools=[
            ToolDef("file_editor", EDITOR_DESCRIPTION, params, editor_runner(editor),
                    wrap=_header("file_editor")),
            ToolDef("execute_bash", "\nDescription: Execute a bash command in the terminal.\n\n"
                    "Parameters:\n  (1) command (string, required): The bash command to "
                    "execute. For example: `python my_script.py`\n",
                    {"type": "object", "properties": {"cmd": {
                        "type": "string", "description": "The command (and optional arguments)"
                        " to execute. For example: 'python my_script.py'"}},
                     "required": ["cmd"]}, _bash),
            ToolDef("search", "Search for a term in either a directory or a single file.",
                    {"type": "object", "properties": {
                        "search_term": {"type": "string",
                                        "description": "The term to search for in files."},
                        "path": {"type": "string", "description": "The file or directory to "
                                 "search in. Defaults to `.` if not specified."}},
                     "required": ["search_term"]}, _search, wrap=_header("search")),
            ToolDef("finish", "A simple finish tool with a 'submit' command.",
                    {"type": "object", "properties": {
                        "command": {"type": "string", "enum": ["submit"],
                                    "description": "The command to run: `submit`."},
                        "result": {"type": "string", "description": "Optional. The result "
                                   "text or final message to submit."}},
                     "required": ["command"]}, _finish, submits=True),
        ],
        bash_tool="execute_bash", bash_arg="cmd", system_prompt=SYSTEM,
        instance_prompt=INSTANCE, error_text=lambda m: f"ERROR: {m}",
        format_error=CONTINUE_MSG, submit_args={"command": "submit"})
