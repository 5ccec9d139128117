"""Run by the openhands-v1-client venv (Python 3.12, openhands-workspace + openhands-sdk), not
by the test process: OpenHands' own `APIRemoteWorkspace` against a swebox server, on a plain
image. Arguments: runtime API URL, API key, image. Prints one JSON object."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from openhands.workspace import APIRemoteWorkspace


def status(url: str, key: str | None) -> int:
    req = urllib.request.Request(url, headers={"X-Session-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def main() -> None:
    url, key, image = sys.argv[1:4]
    out: dict[str, object] = {}
    t0 = time.monotonic()
    with APIRemoteWorkspace(runtime_api_url=url, runtime_api_key=key, server_image=image,
                            init_timeout=120, startup_wait_timeout=300,
                            api_timeout=120) as ws:
        out["ready_seconds"] = round(time.monotonic() - t0, 2)
        out["host"] = ws.host
        r = ws.execute_command("echo hello from $(uname -s); python3 -c 'print(6 * 7)'",
                               timeout=60)
        out["cmd"] = {"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}
        r = ws.execute_command("pwd; echo oops >&2; exit 3", cwd="/tmp", timeout=60)
        out["cmd2"] = {"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}
        r = ws.execute_command("echo key=${SESSION_API_KEY:-none}", timeout=60)
        out["key_in_commands"] = r.stdout
        with tempfile.TemporaryDirectory() as d:
            src = Path(d, "note.txt")
            src.write_text("uploaded through the agent server\n")
            up = ws.file_upload(str(src), "/tmp/oh-v1/note.txt")
            out["upload_ok"] = bool(up.success)
            out["cat"] = ws.execute_command("cat /tmp/oh-v1/note.txt", timeout=60).stdout
            ws.execute_command("printf 'made in the sandbox\\n' > /tmp/oh-v1/made.txt",
                               timeout=60)
            down = ws.file_download("/tmp/oh-v1/made.txt", str(Path(d, "made.txt")))
            out["download_ok"] = bool(down.success)
            out["download"] = Path(d, "made.txt").read_text()
        search = f"{ws.host}/api/bash/bash_events/search"
        out["health_no_key"] = status(f"{ws.host}/health", None)
        out["api_no_key"] = status(search, None)
        out["api_wrong_key"] = status(search, "wrong")
        out["api_right_key"] = status(search, ws.api_key)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
