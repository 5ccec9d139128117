"""The V0 actions of `/execute_action`: run, read, write, edit (openhands-aci commands), and
the answers for run_ipython and the browser on a plain image.

Each is answered as OpenHands' action execution server answers it (the observation shapes are
in observations.py), with these deviations:
- a command runs until its `timeout` and is then killed (swebox never leaves one running): a
  timed-out command answers exit code -1 and OpenHands' "timed out" suffix; there is no
  no-change timeout (NO_CHANGE_TIMEOUT_SECONDS) and no "continue the running command" state,
  so an empty command or `is_input` answer "No previous running command";
- several top-level commands in one action are run (OpenHands refuses them);
- `run_ipython` answers an error observation: the image has no Jupyter kernel.
"""

from __future__ import annotations

import io
import posixpath
import shlex
from typing import Any

from swebox.agents.dialects.openhands import TEXTS
from swebox.agents.tools.base import ToolError
from swebox.agents.tools.editor import Editor
from swebox.server.openhands import observations as obs
from swebox.server.openhands.runtimes import Runtime

DEFAULT_TIMEOUT = 120.0  # when an action comes without one (OpenHands' client always sends it)
OUTPUT_LIMIT = 2 * 1024**2  # bytes of a command's output kept (head and tail)
EDITOR = Editor(TEXTS, absolute_paths=True)
BASH_OR_SH = 'command -v bash >/dev/null 2>&1 && exec bash -c "$1"; exec /bin/sh -c "$1"'
SHELL_INFO = 'printf "%s\\n" "$!"; which python 2>/dev/null || echo ""'
KIND = 'if [ -d "$1" ]; then echo dir; elif [ -e "$1" ]; then echo file; else echo missing; fi'


def execute(rt: Runtime, action: dict[str, Any]) -> dict[str, Any]:
    """One action (the `action` of OpenHands' `{"action": event_to_dict(...)}`) -> the
    observation. Never raises: a failure is an error observation, or for a hidden command
    (whose answer the client requires to be a `run` observation) a run with exit code -1."""
    kind = str(action.get("action") or "")
    args = action.get("args") or {}
    if not isinstance(args, dict):
        return obs.error(f"ERROR: the args of a {kind} action must be an object")
    hidden = kind == "run" and bool(args.get("hidden"))
    try:
        if kind == "run":
            return run(rt, args, action.get("timeout"))
        if kind == "read":
            return read(rt, args)
        if kind == "write":
            return write(rt, args)
        if kind == "edit":
            return edit(rt, args)
        if kind == "run_ipython":
            return obs.error(
                f"IPython is not available in this runtime: swebox runs the image {rt.image} "
                "as it is, without OpenHands' Jupyter plugin. Run Python through bash instead "
                "(`python3 script.py` or `python3 -c '...'`).")
        if kind in ("browse", "browse_interactive"):
            return obs.error(obs.NO_BROWSER)
        return obs.error(f"Action {kind or '(none)'} is not supported by the swebox runtime.",
                         "AGENT_ERROR$BAD_ACTION")
    except Exception as e:  # the sandbox failed under the action: say so, keep serving
        text = f"ERROR: the swebox runtime could not run the {kind} action: {e}"
        if hidden:
            return obs.run(text, str(args.get("command") or ""), obs.metadata(), hidden=True)
        return obs.error(text)


# -- run -------------------------------------------------------------------------------------
def _special_key(command: str) -> bool:
    return command.startswith("C-") and len(command) == 3


def run(rt: Runtime, args: dict[str, Any], timeout: Any) -> dict[str, Any]:
    assert rt.ctx is not None
    command = str(args.get("command") or "").strip()
    hidden = bool(args.get("hidden"))
    if command == "":
        return obs.run(obs.NO_LOGS, "", obs.metadata(), hidden)
    if args.get("is_input"):
        return obs.run(obs.NO_PROCESS, "", obs.metadata(), hidden)
    limit = float(timeout) if timeout else DEFAULT_TIMEOUT
    if _special_key(command):  # nothing runs between actions: the key reaches an idle prompt
        code = 130 if command == "C-c" else 0
        return obs.run("", command, _completed(rt, code, command), hidden)
    if args.get("is_static"):  # a fresh shell in `cwd` (OpenHands' git helpers)
        cwd = str(args.get("cwd") or rt.workdir)
        res = rt.sandbox.exec(["/bin/sh", "-c", BASH_OR_SH, "swebox-oh", command],
                              timeout=limit, cwd=cwd)
    else:
        res = rt.ctx.run_shell(command, timeout=limit, limit=OUTPUT_LIMIT)
        cwd = None
    out = res.output.strip()
    if res.timed_out:
        return obs.run(out, command, obs.metadata(suffix=obs.timed_out_suffix(limit)), hidden)
    return obs.run(out, command, _completed(rt, res.exit_code, command, cwd), hidden)


def _completed(rt: Runtime, code: int, command: str, cwd: str | None = None
               ) -> dict[str, Any]:
    """The metadata OpenHands reads from its PS1 prompt after a command: `$!`, the user,
    the host, the working directory and `which python`."""
    pid, python = -1, ""
    if cwd is None:
        assert rt.ctx is not None
        session = rt.ctx.session
        try:
            lines = session.run(SHELL_INFO, timeout=10).output.split("\n")
            pid = int(lines[0]) if lines[0].strip().isdigit() else -1
            python = lines[1].strip() if len(lines) > 1 else ""
        except Exception:
            pass
        cwd = session.cwd or rt.workdir
    special = command if _special_key(command) else None
    return obs.metadata(exit_code=code, pid=pid, username=rt.username, hostname=rt.hostname,
                        working_dir=cwd, py_interpreter_path=python,
                        suffix=obs.completed_suffix(code, special))


# -- files -----------------------------------------------------------------------------------
def _cwd(rt: Runtime) -> str:
    session = rt.ctx._session if rt.ctx is not None else None
    return (session.cwd if session is not None and not session.closed else "") or rt.workdir


def _resolve(rt: Runtime, path: str) -> str:
    return path if path.startswith("/") else posixpath.join(_cwd(rt), path)


def _kind(rt: Runtime, path: str) -> str:
    assert rt.ctx is not None
    res = rt.ctx.quiet(f"set -- {shlex.quote(path)}; {KIND}", timeout=30)
    word = res.output.strip().split("\n")[-1] if res.output.strip() else ""
    if word not in ("dir", "file", "missing"):
        raise ToolError(f"cannot inspect {path}: {res.output.strip()[:200]}")
    return word


def is_binary(data: bytes) -> bool:
    """Roughly binaryornot's test on the first KiB: NUL bytes, or mostly control bytes in
    something that is not UTF-8."""
    chunk = data[:1024]
    if not chunk:
        return False
    if b"\0" in chunk:
        return True
    try:
        chunk.decode("utf-8")
        return False
    except UnicodeDecodeError as e:
        if e.start >= len(chunk) - 3:  # a character cut at the chunk's end
            return False
    text = set(range(32, 127)) | {7, 8, 9, 10, 12, 13, 27}
    odd = sum(1 for b in chunk if b not in text and b < 128)
    return odd / len(chunk) > 0.3


def _lines(text: str) -> list[str]:
    """`file.readlines()` of a text-mode file: universal newlines."""
    return io.StringIO(text, newline=None).readlines()


def read_lines(lines: list[str], start: int = 0, end: int = -1) -> list[str]:
    """openhands/runtime/utils/files.py::read_lines."""
    start = min(max(start, 0), len(lines))
    end = -1 if end == -1 else max(end, 0)
    end = min(end, len(lines))
    if end == -1:
        return lines if start == 0 else lines[start:]
    begin = max(0, min(start, len(lines) - 2))
    end = -1 if end > len(lines) else max(begin + 1, end)
    return lines[begin:end]


def insert_lines(new: list[str], old: list[str], start: int = 0, end: int = -1) -> list[str]:
    """openhands/runtime/utils/files.py::insert_lines."""
    out = [""] if start == 0 else old[:start]
    out += [line + "\n" for line in new]
    out += [""] if end == -1 else old[end:]
    return out


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def read(rt: Runtime, args: dict[str, Any]) -> dict[str, Any]:
    path = str(args.get("path") or "")
    impl = str(args.get("impl_source") or "default")
    full = _resolve(rt, path)
    cwd = _cwd(rt)
    kind = _kind(rt, full)
    data = rt.sandbox.read_file(full) if kind == "file" else b""
    if is_binary(data):
        return obs.error("ERROR_BINARY_FILE")
    if impl == "oh_aci":
        return obs.read(_editor(rt, "view", path, view_range=args.get("view_range")), path,
                        "oh_aci")
    if kind == "missing":
        return obs.error(f"File not found: {full}. Your current working directory is {cwd}.")
    if kind == "dir":
        return obs.error(f"Path is a directory: {full}. You can only read files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return obs.error(f"File could not be decoded as utf-8: {full}.")
    lines = read_lines(_lines(text), _int(args.get("start"), 0), _int(args.get("end"), -1))
    return obs.read("".join(lines), full)


def write(rt: Runtime, args: dict[str, Any]) -> dict[str, Any]:
    assert rt.ctx is not None
    full = _resolve(rt, str(args.get("path") or ""))
    new = str(args.get("content") or "").split("\n")
    kind = _kind(rt, full)
    if kind == "dir":
        return obs.error(f"Path is a directory: {full}. You can only write to files")
    if kind == "missing":  # written by the shell's user, parents made, as OpenHands does
        rt.ctx.write_text(full, "".join(line + "\n" for line in new))
        return obs.write(full)
    try:
        old = rt.sandbox.read_file(full).decode("utf-8")
    except UnicodeDecodeError:
        return obs.error(f"File could not be decoded as utf-8: {full}")
    start, end = _int(args.get("start"), 0), _int(args.get("end"), -1)
    rt.ctx.write_text(full, "".join(insert_lines(new, _lines(old), start, end)))
    return obs.write(full)


def _editor(rt: Runtime, command: str, path: str, **kw: Any) -> str:
    assert rt.ctx is not None
    try:
        return EDITOR.run(rt.ctx, command, path, **kw)
    except ToolError as e:
        return f"ERROR:\n{e}"


def _text(rt: Runtime, path: str) -> str:
    try:
        return rt.sandbox.read_file(path).decode("utf-8", errors="replace")
    except Exception:
        return ""


def edit(rt: Runtime, args: dict[str, Any]) -> dict[str, Any]:
    impl = str(args.get("impl_source") or "")
    path = str(args.get("path") or "")
    command = str(args.get("command") or "")
    old_str, new_str = args.get("old_str"), args.get("new_str")
    if impl != "oh_aci":
        return obs.error(f"ERROR: this runtime runs openhands-aci edits (impl_source "
                         f"'oh_aci'), not {impl!r}")
    line = args.get("insert_line")
    if isinstance(line, str):
        try:
            line = int(line)
        except ValueError:
            return obs.edit(f"ERROR:\nInvalid insert_line value: '{line}'. Expected an "
                            "integer.", path, old_str, new_str, None if rt.skyrl else "")
    changes = command != "view" and path.startswith("/")
    before = _text(rt, path) if changes else ""
    out = _editor(rt, command, path, file_text=args.get("file_text"), old_str=old_str,
                  new_str=new_str, insert_line=line)
    failed = out.startswith("ERROR:\n")
    after = _text(rt, path) if changes and not failed else before
    diff = "" if failed else obs.get_diff(before, after, path)
    return obs.edit(out, path, old_str, new_str, None if rt.skyrl else diff)
