"""The observation JSON OpenHands' V0 action server answers `/execute_action` with, exactly as
its `event_to_dict` shapes them (openhands-ai 1.6.0).

The client rebuilds an observation as `cls(content=content, **extras)`, so an extras key its
class does not know raises TypeError there: each builder below emits exactly the fields of
its class and nothing else. Top-level keys besides `observation`, `content` and `extras`
(`message`, `success`) are read by nobody, but are sent as the real server sends them.
"""

from __future__ import annotations

import difflib
from typing import Any

# The text OpenHands appends to every command that ran out of time
# (openhands/runtime/utils/bash_constants.py::TIMEOUT_MESSAGE_TEMPLATE).
TIMEOUT_MESSAGE = ("You may wait longer to see additional output by sending empty command '', "
                   "send other commands to interact with the current process, send keys "
                   "(\"C-c\", \"C-z\", \"C-d\") to interrupt/kill the previous command before "
                   "sending your new command, or use the timeout parameter in execute_bash for "
                   "future commands.")
NO_LOGS = "ERROR: No previous running command to retrieve logs from."
NO_PROCESS = "ERROR: No previous running command to interact with."
NO_BROWSER = "Browser functionality is not supported or disabled."


def metadata(exit_code: int = -1, pid: int = -1, username: str | None = None,
             hostname: str | None = None, working_dir: str | None = None,
             py_interpreter_path: str | None = None, prefix: str = "",
             suffix: str = "") -> dict[str, Any]:
    """`CmdOutputMetadata`: these eight keys, no others (the defaults are its defaults)."""
    return {"exit_code": exit_code, "pid": pid, "username": username, "hostname": hostname,
            "working_dir": working_dir, "py_interpreter_path": py_interpreter_path,
            "prefix": prefix, "suffix": suffix}


def completed_suffix(exit_code: int, special_key: str | None = None) -> str:
    if special_key:
        return (f"\n[The command completed with exit code {exit_code}. "
                f"CTRL+{special_key[-1].upper()} was sent.]")
    return f"\n[The command completed with exit code {exit_code}.]"


def timed_out_suffix(timeout: float) -> str:
    # OpenHands formats the action's float timeout as it is: "120.0", "2.5".
    return f"\n[The command timed out after {float(timeout)} seconds. {TIMEOUT_MESSAGE}]"


def run(content: str, command: str, meta: dict[str, Any], hidden: bool = False
        ) -> dict[str, Any]:
    """`CmdOutputObservation` (observation "run")."""
    code = meta["exit_code"]
    return {"message": f"Command `{command}` executed with exit code {code}.",
            "observation": "run", "content": content,
            "extras": {"command": command, "metadata": meta, "hidden": hidden},
            "success": code == 0}


def error(content: str, error_id: str = "") -> dict[str, Any]:
    """`ErrorObservation` (observation "error")."""
    return {"message": content, "observation": "error", "content": content,
            "extras": {"error_id": error_id}}


def null() -> dict[str, Any]:
    return {"message": "No observation", "observation": "null", "content": "", "extras": {}}


def read(content: str, path: str, impl_source: str = "default") -> dict[str, Any]:
    """`FileReadObservation` (observation "read")."""
    return {"message": f"I read the file {path}.", "observation": "read", "content": content,
            "extras": {"path": path, "impl_source": impl_source}}


def write(path: str) -> dict[str, Any]:
    """`FileWriteObservation` (observation "write")."""
    return {"message": f"I wrote to the file {path}.", "observation": "write", "content": "",
            "extras": {"path": path}}


def edit(content: str, path: str, old_str: str | None, new_str: str | None,
         diff: str | None) -> dict[str, Any]:
    """`FileEditObservation` of an openhands-aci edit. As the real server does, `old_content`
    and `new_content` carry the action's old_str/new_str, and `diff` the whole-file diff.
    `diff=None` leaves the field out: SkyRL's fork (May 2025) has no such field."""
    extras = {"path": path, "prev_exist": False, "old_content": old_str,
              "new_content": new_str, "impl_source": "oh_aci", "diff": diff,
              "_diff_cache": None}
    if diff is None:
        del extras["diff"]
    return {"message": f"I edited the file {path}.", "observation": "edit", "content": content,
            "extras": extras}


def get_diff(old: str, new: str, path: str = "file") -> str:
    """openhands-aci's `get_diff`: a unified diff without context lines, lines right-stripped."""
    lines = difflib.unified_diff(old.split("\n"), new.split("\n"), fromfile=path, tofile=path,
                                 n=0)
    return "\n".join(line.rstrip() for line in lines)
