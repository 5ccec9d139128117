"""The file editor: view, create, str_replace, insert, undo_edit. One implementation of the
str_replace semantics, whatever a dialect calls the tool.

The texts are those of the editor the SWE-agent, OpenHands and R2E-Gym editors descend from
(`cat -n` style numbering, a snippet of four lines around an edit); a dialect may override any
of them through `EditorTexts`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from swebox.agents.tools.base import ToolContext, ToolError

SNIPPET_LINES = 4
MAX_FILE_BYTES = 2 * 1024**2  # larger files are refused with a hint to use bash


@dataclass(frozen=True)
class EditorTexts:
    view_file: str = "Here's the result of running `cat -n` on {path}:\n{body}\n"
    view_dir: str = ("Here's the files and directories up to 2 levels deep in {path}, "
                     "excluding hidden items:\n{body}\n")
    created: str = "File created successfully at: {path}"
    edited: str = ("The file {path} has been edited. Here's the result of running `cat -n` on a "
                   "snippet of {path}:\n{snippet}\nReview the changes and make sure they are as "
                   "expected. Edit the file again if necessary.")
    inserted: str = ("The file {path} has been edited. Here's the result of running `cat -n` on "
                     "a snippet of the edited file:\n{snippet}\nReview the changes and make sure "
                     "they are as expected (correct indentation, no duplicate lines, etc). Edit "
                     "the file again if necessary.")
    undone: str = ("Last edit to {path} undone successfully. Here's the result of running "
                   "`cat -n` on {path}:\n{body}\n")
    no_match: str = ("No replacement was performed, old_str `{old_str}` did not appear verbatim "
                     "in {path}.")
    many_matches: str = ("No replacement was performed. Multiple occurrences of old_str "
                         "`{old_str}` in lines {lines}. Please ensure it is unique.")
    same_strings: str = ("No replacement was performed. `new_str` and `old_str` must be "
                         "different.")
    not_absolute: str = ("The path {path} is not an absolute path, it should start with `/`. "
                         "Maybe you meant {suggested}?")
    missing: str = "The path {path} does not exist. Please provide a valid path."
    exists: str = ("File already exists at: {path}. Cannot overwrite files using command "
                   "`create`.")
    dir_only_view: str = ("The path {path} is a directory and only the `view` command can be "
                          "used on directories")
    no_history: str = "No edit history found for {path}."
    range_shape: str = "Invalid `view_range`. It should be a list of two integers."
    range_start: str = ("Invalid `view_range`: {view_range}. Its first element `{first}` should "
                        "be within the range of lines of the file: {bounds}")
    range_end: str = ("Invalid `view_range`: {view_range}. Its second element `{last}` should be "
                      "smaller than the number of lines in the file: `{n}`")
    range_order: str = ("Invalid `view_range`: {view_range}. Its second element `{last}` should "
                        "be larger or equal than its first `{first}`")
    range_dir: str = ("The `view_range` parameter is not allowed when `path` points to a "
                      "directory.")
    view_not_py: str = ""  # set: only .py files may be viewed (R2E-Gym), this is the refusal
    bad_insert_line: str = ("Invalid `insert_line` parameter: {insert_line}. It should be within "
                            "the range of lines of the file: {bounds}")
    missing_param: str = "Parameter `{param}` is required for command: {command}."
    bad_command: str = ("Unrecognized command {command}. The allowed commands for the {tool} "
                        "tool are: {allowed}")
    too_big: str = ("File {path} is {size} bytes, too large to view or edit here; use the bash "
                    "tool (grep, sed -n) to work with it.")
    not_text: str = "File {path} is not a UTF-8 text file; the editor works on text files only."


COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")


def numbered(text: str, start: int = 1, sep: str = "\t") -> str:
    return "\n".join(f"{i:6}{sep}{line}" for i, line in enumerate(text.split("\n"), start))


class Editor:
    def __init__(self, texts: EditorTexts | None = None, *, absolute_paths: bool = True,
                 tool_name: str = "str_replace_editor", view_sep: str = "\t",
                 dir_find: str = "-not -path '*/.*'") -> None:
        self.texts = texts or EditorTexts()
        self.absolute_paths = absolute_paths
        self.tool_name = tool_name
        self.view_sep = view_sep  # between number and line in `view` (snippets use a tab)
        self.dir_find = dir_find  # what `find` lists when viewing a directory

    # -- dispatch ------------------------------------------------------------------------
    def run(self, ctx: ToolContext, command: str | None, path: str | None, *,
            file_text: str | None = None, old_str: str | None = None,
            new_str: str | None = None, insert_line: int | None = None,
            view_range: list[int] | None = None) -> str:
        t = self.texts
        if command not in COMMANDS:
            raise ToolError(t.bad_command.format(command=command, tool=self.tool_name,
                                                 allowed=", ".join(COMMANDS)))
        if not path:
            raise ToolError(t.missing_param.format(param="path", command=command))
        path = self._path(ctx, path)
        kind = self._kind(ctx, path)
        if command == "create":
            if file_text is None:
                raise ToolError(t.missing_param.format(param="file_text", command=command))
            if kind != "missing":
                raise ToolError(t.exists.format(path=path))
            return self._create(ctx, path, file_text)
        if kind == "missing":
            raise ToolError(t.missing.format(path=path))
        if kind == "dir":
            if command != "view":
                raise ToolError(t.dir_only_view.format(path=path))
            if view_range:
                raise ToolError(t.range_dir.format(view_range=view_range, path=path))
            return self._view_dir(ctx, path)
        if command == "view":
            return self._view(ctx, path, view_range)
        if command == "str_replace":
            if old_str is None:
                raise ToolError(t.missing_param.format(param="old_str", command=command))
            return self._str_replace(ctx, path, old_str, new_str or "")
        if command == "insert":
            if insert_line is None:
                raise ToolError(t.missing_param.format(param="insert_line", command=command))
            if new_str is None:
                raise ToolError(t.missing_param.format(param="new_str", command=command))
            return self._insert(ctx, path, _as_int(insert_line, "insert_line"), new_str)
        return self._undo(ctx, path)

    # -- helpers -------------------------------------------------------------------------
    def _path(self, ctx: ToolContext, path: str) -> str:
        path = path.strip()
        if path.startswith("/"):
            return path
        suggested = f"{ctx.workdir.rstrip('/')}/{path.lstrip('./')}" if path not in (".", "./") \
            else ctx.workdir
        if self.absolute_paths:
            raise ToolError(self.texts.not_absolute.format(path=path, suggested=suggested))
        return suggested

    def _kind(self, ctx: ToolContext, path: str) -> str:
        q = shlex.quote(path)
        res = ctx.quiet(f"if [ -d {q} ]; then echo dir; elif [ -e {q} ]; then echo file "
                        f"$(wc -c < {q}); else echo missing; fi", timeout=30)
        words = res.output.split()
        if not words:
            raise ToolError(f"cannot inspect {path}: {res.output.strip()[:200]}")
        if words[0] == "file" and len(words) > 1 and int(words[1]) > MAX_FILE_BYTES:
            raise ToolError(self.texts.too_big.format(path=path, size=words[1]))
        return words[0]

    def read(self, ctx: ToolContext, path: str) -> str:
        data = ctx.sandbox.read_file(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(self.texts.not_text.format(path=path)) from None

    def _write(self, ctx: ToolContext, path: str, text: str, before: str | None) -> None:
        ctx.write_text(path, text)
        ctx.history.setdefault(path, []).append(None if before is None else before.encode())

    def _snippet(self, text: str, first_line: int, n_new_lines: int) -> str:
        lines = text.split("\n")
        start = max(0, first_line - SNIPPET_LINES)
        end = min(len(lines), first_line + n_new_lines + SNIPPET_LINES)
        return numbered("\n".join(lines[start:end]), start + 1)

    # -- commands ------------------------------------------------------------------------
    def _view_dir(self, ctx: ToolContext, path: str) -> str:
        q = shlex.quote(path)
        res = ctx.quiet(f"find {q} -maxdepth 2 {self.dir_find} | sort", timeout=60)
        return self.texts.view_dir.format(path=path, body=res.output.rstrip("\n"))

    def _view(self, ctx: ToolContext, path: str, view_range: list[int] | None) -> str:
        t = self.texts
        if t.view_not_py and not path.endswith(".py"):
            raise ToolError(t.view_not_py.format(path=path, name=path.rsplit("/", 1)[-1]))
        text = self.read(ctx, path)
        if not view_range:
            return t.view_file.format(path=path, body=numbered(text, 1, self.view_sep))
        lines = text.split("\n")
        n = len(lines)
        fields = {"view_range": view_range, "n": n, "bounds": [1, n]}
        if len(view_range) != 2:
            raise ToolError(t.range_shape.format(**fields, first="", last=""))
        first, last = view_range
        fields.update(first=first, last=last)
        if not 1 <= first <= n:
            raise ToolError(t.range_start.format(**fields))
        if last != -1 and last < first:
            raise ToolError(t.range_order.format(**fields))
        if last > n:
            raise ToolError(t.range_end.format(**fields))
        chosen = lines[first - 1:] if last == -1 else lines[first - 1:last]
        return t.view_file.format(path=path,
                                  body=numbered("\n".join(chosen), first, self.view_sep))

    def _create(self, ctx: ToolContext, path: str, text: str) -> str:
        self._write(ctx, path, text, None)
        return self.texts.created.format(path=path, body=numbered(text))

    def _str_replace(self, ctx: ToolContext, path: str, old: str, new: str) -> str:
        text = self.read(ctx, path)
        if old == new:
            raise ToolError(self.texts.same_strings.format(old_str=old, new_str=new))
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(self.texts.no_match.format(old_str=old, path=path))
        if count > 1:
            lines, pos = [], text.find(old)
            while pos >= 0:
                lines.append(text.count("\n", 0, pos) + 1)
                pos = text.find(old, pos + 1)
            raise ToolError(self.texts.many_matches.format(old_str=old, lines=lines, path=path))
        at = text.index(old)
        updated = text.replace(old, new, 1)
        self._write(ctx, path, updated, text)
        first = text.count("\n", 0, at)
        snippet = self._snippet(updated, first, new.count("\n"))
        return self.texts.edited.format(path=path, snippet=snippet)

    def _insert(self, ctx: ToolContext, path: str, line: int, new: str) -> str:
        text = self.read(ctx, path)
        lines = text.split("\n")
        n = len(lines) - 1 if text.endswith("\n") else len(lines)
        if not 0 <= line <= n:
            raise ToolError(self.texts.bad_insert_line.format(insert_line=line, bounds=[0, n]))
        new_lines = new.split("\n")
        updated = "\n".join(lines[:line] + new_lines + lines[line:])
        self._write(ctx, path, updated, text)
        snippet = self._snippet(updated, line, len(new_lines) - 1)
        return self.texts.inserted.format(path=path, snippet=snippet)

    def _undo(self, ctx: ToolContext, path: str) -> str:
        stack = ctx.history.get(path)
        if not stack:
            raise ToolError(self.texts.no_history.format(path=path))
        before = stack.pop()
        if before is None:  # the last edit created the file: undo removes it
            ctx.quiet(f"rm -f {shlex.quote(path)}")
            return self.texts.undone.format(path=path, body="(the file was removed)")
        text = before.decode()
        ctx.write_text(path, text)
        return self.texts.undone.format(path=path, body=numbered(text))


def _as_int(value: object, name: str) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ToolError(f"Parameter `{name}` must be an integer, got {value!r}.") from None
