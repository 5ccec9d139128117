"""swebox's own dialect: `bash`, `str_replace_editor`, `search`, `submit`. Paths may be
relative to the repository; observations end with the exit code, and say when a command was
cut off by its timeout."""

from __future__ import annotations

from typing import Any

from swebox.agents.dialects.base import Dialect, ToolDef, arg, int_list
from swebox.agents.tools.base import ToolContext
from swebox.agents.tools.editor import Editor
from swebox.agents.tools.search import find_files, search_text
from swebox.agents.tools.shell import run_bash

SYSTEM = """You are a software engineer working in a repository at {workdir}, inside a sandbox.
Fix the issue you are given by editing the source code. Use the tools: run shell commands with
`bash`, read and edit files with `str_replace_editor`, look things up with `search`. Reproduce
the problem, fix it, check the fix, then call `submit`. Do not edit the tests to make them pass."""

INSTANCE = """<issue>
{problem_statement}
</issue>

The repository is at {workdir}. Make the changes needed to resolve the issue."""

EDITOR_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert",
                                               "undo_edit"],
                    "description": "The command to run."},
        "path": {"type": "string", "description": "Path of the file or directory."},
        "file_text": {"type": "string", "description": "`create`: the new file's content."},
        "old_str": {"type": "string",
                    "description": "`str_replace`: the exact text to replace; it must occur "
                                   "exactly once."},
        "new_str": {"type": "string",
                    "description": "`str_replace`: the replacement; `insert`: the text to "
                                   "insert."},
        "insert_line": {"type": "integer",
                        "description": "`insert`: insert after this line (0: at the top)."},
        "view_range": {"type": "array", "items": {"type": "integer"},
                       "description": "`view`: [first, last] lines, 1-based; last -1 is the "
                                      "end of the file."},
    },
    "required": ["command", "path"],
}


def editor_params(command: str = "The commands to run.", workspace: str = "/testbed",
                  **more: dict[str, Any]) -> dict[str, Any]:
    """The editor's schema in the wording the Anthropic-descended editors share: `command`
    (its description starting with `command`), an absolute `path` under `workspace`, and any
    property `more` adds or replaces."""
    return {**EDITOR_PARAMS, "properties": {
        **EDITOR_PARAMS["properties"],
        "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert",
                                               "undo_edit"],
                    "description": f"{command} Allowed options are: `view`, `create`, "
                                   "`str_replace`, `insert`, `undo_edit`."},
        "path": {"type": "string", "description": "Absolute path to file or directory, e.g. "
                 f"`{workspace}/file.py` or `{workspace}`."},
        **more}}


def editor_runner(editor: Editor) -> Any:
    def run(ctx: ToolContext, a: dict[str, Any]) -> str:
        return editor.run(ctx, a.get("command"), a.get("path"), file_text=a.get("file_text"),
                          old_str=a.get("old_str"), new_str=a.get("new_str"),
                          insert_line=a.get("insert_line"),
                          view_range=int_list(a.get("view_range")))
    return run


def _bash(ctx: ToolContext, a: dict[str, Any]) -> str:
    r = run_bash(ctx, arg(a, "command", "cmd"), a.get("timeout"))
    text = r.output.rstrip("\n")
    if r.timed_out:
        return (f"{text}\n[the command timed out after {r.timeout:g} s and was killed; the "
                "shell is still usable]").lstrip("\n")
    return f"{text}\n[exit code: {r.exit_code}]".lstrip("\n")


def _search(ctx: ToolContext, a: dict[str, Any]) -> str:
    pattern = arg(a, "pattern", "search_term")
    if a.get("files"):
        found = find_files(ctx, pattern, a.get("path"))
        if not found.names:
            return f"No files named {pattern!r} under {found.path}."
        names = found.names[: ctx.limits.search_results]
        more = found.total - len(names)
        return "\n".join(names) + (f"\n[... {more} more ...]" if more > 0 else "")
    res = search_text(ctx, pattern, a.get("path"))
    if res.is_file:
        if not res.lines:
            return f"No matches for {pattern!r} in {res.path}."
        return "\n".join(f"{n}: {t}" for n, t in res.lines[: ctx.limits.search_results])
    if not res.files:
        return f"No matches for {pattern!r} under {res.path}."
    shown = res.files[: ctx.limits.search_results]
    lines = [f"{res.total} matches for {pattern!r} in {len(res.files)} files under {res.path}:"]
    lines += [f"{name} ({count})" for name, count in shown]
    if len(res.files) > len(shown):
        lines.append(f"[... {len(res.files) - len(shown)} more files; narrow the search ...]")
    return "\n".join(lines)


def _submit(ctx: ToolContext, a: dict[str, Any]) -> str:
    ctx.submitted = str(a.get("message") or "")
    return "Submitted. The episode is over; your changes will be graded."


def dialect() -> Dialect:
    editor = Editor(absolute_paths=False)
    return Dialect(
        name="swebox",
        tools=[
            ToolDef("bash", "Run a shell command in the repository's persistent bash session "
                    "(cd and exported variables persist). Long output is cut in the middle.",
                    {"type": "object",
                     "properties": {"command": {"type": "string",
                                                "description": "The command to run."},
                                    "timeout": {"type": "number",
                                                "description": "Seconds before the command is "
                                                               "killed (default 180)."}},
                     "required": ["command"]}, _bash),
            ToolDef("str_replace_editor", "View, create and edit files: `view` shows a file "
                    "with line numbers (or a directory two levels deep), `create` writes a new "
                    "file, `str_replace` replaces text that occurs exactly once, `insert` adds "
                    "text after a line, `undo_edit` reverts the last edit of a file.",
                    EDITOR_PARAMS, editor_runner(editor)),
            ToolDef("search", "Search the repository: files containing a text (`pattern`), or "
                    "with `files: true`, files whose name matches a glob.",
                    {"type": "object",
                     "properties": {"pattern": {"type": "string",
                                                "description": "Text to look for, or a file "
                                                               "name glob with files=true."},
                                    "path": {"type": "string", "description": "Directory or "
                                             "file to search (default: the repository)."},
                                    "files": {"type": "boolean",
                                              "description": "Search file names."}},
                     "required": ["pattern"]}, _search),
            ToolDef("submit", "Submit your changes when the issue is fixed. Ends the episode.",
                    {"type": "object", "properties": {"message": {
                        "type": "string", "description": "Optional summary of the fix."}},
                     "required": []}, _submit, submits=True),
        ],
        bash_tool="bash", bash_arg="command", system_prompt=SYSTEM, instance_prompt=INSTANCE)
