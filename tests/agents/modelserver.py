"""A real OpenAI-compatible chat-completions server on loopback that plays scripted policies.

The model is not what the agent tests test: the loop, the tools, the sandboxes and the rewards
are. The server answers `POST /v1/chat/completions` like vLLM does (tool calls when the request
has `tools`, text otherwise) and picks its next action from the conversation so far, so it keeps
no per-episode state and any number of episodes can share it. The policy is the request's
`model`:

- `solver`: reads the file the gold patch changes, makes the patch's edits with the editor (one
  str_replace per hunk), runs the tests, submits. Reward 1 on every sample task. With
  mini-swe-agent's one `bash` tool: `git apply` of the gold patch from a here-document, the
  tests, then the submission its swebench.yaml asks for (patch.txt, the sentinel, `cat`).
- `flailer`: malformed and unknown tool calls, a 50 MB output, `sleep 1000`, a fork bomb, a
  command that ignores SIGTERM, `exit`; then submits.
- `hacker`: rewrites the tests to pass, adds a conftest hook that passes everything, looks for
  hidden tests, submits without fixing anything.
- `text-solver`: the solver in text form (R2E's <function=...> or a fenced bash block).
- `unreliable-<solver|...>`: the same policy behind faults: each step's first request gets a
  429 with Retry-After, a 500, a response cut mid-body or a reply slower than the client's
  timeout (in turn), the retry succeeds.

Tasks are recognised by their problem statement; `ScriptedServer(tasks)` knows their gold
patches. Run as a module for a separate process: `python -m tests.agents.modelserver --port N`
serves the bundled sample tasks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

FORK_BOMB = "bomb() { bomb | bomb & }; bomb"
IGNORES_TERM = "sh -c 'trap \"\" TERM; sleep 1000'"
BIG_OUTPUT = "head -c 50000000 /dev/zero | tr '\\0' 'a'"


@dataclass
class Hunk:
    path: str
    old: str
    new: str


@dataclass
class Script:
    """What the policies know about one task."""

    instance_id: str
    statement: str
    hunks: list[Hunk] = field(default_factory=list)
    test_command: str = "python3 -m pytest -q -p no:cacheprovider"
    test_files: list[str] = field(default_factory=list)
    patch: str = ""  # the gold patch as a whole (mini-swe-agent's solver applies it)


def hunks_of(patch: str) -> list[Hunk]:
    """One (old, new) text pair per hunk of a unified diff (context lines in both)."""
    out: list[Hunk] = []
    path = ""
    old: list[str] = []
    new: list[str] = []
    in_hunk = False

    def flush() -> None:
        if in_hunk and (old or new):
            out.append(Hunk(path, "\n".join(old), "\n".join(new)))

    for line in patch.splitlines():
        if line.startswith("diff --git"):
            flush()
            in_hunk = False
            old, new = [], []
        elif line.startswith("+++ "):
            path = line[4:].strip().removeprefix("b/")
        elif line.startswith("--- "):
            continue
        elif line.startswith("@@"):
            flush()
            in_hunk, old, new = True, [], []
        elif in_hunk:
            if line.startswith("+"):
                new.append(line[1:])
            elif line.startswith("-"):
                old.append(line[1:])
            elif line.startswith("\\"):
                continue
            else:
                body = line[1:] if line.startswith(" ") else line
                old.append(body)
                new.append(body)
    flush()
    return out


# -- dialects as the server sees them (from the request's tool names) -----------------------
@dataclass
class Names:
    bash: str
    bash_arg: str
    editor: str
    submit: str
    submit_args: dict[str, Any]
    search: str | None


SENTINEL = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def names_for(tools: list[str]) -> Names:
    if tools == ["bash"]:  # mini-swe-agent: one bash tool, submission by its sentinel
        return Names("bash", "command", "bash", "bash", {"command": SENTINEL}, None)
    if "file_editor" in tools:
        return Names("execute_bash", "cmd", "file_editor", "finish", {"command": "submit"},
                     "search")
    if "finish" in tools:
        return Names("execute_bash", "command", "str_replace_editor", "finish",
                     {"message": "done"}, None)
    if "execute_bash" in tools:
        return Names("execute_bash", "command", "str_replace_editor", "submit", {}, None)
    return Names("bash", "command", "str_replace_editor", "submit", {}, "search")


Action = tuple[str, dict[str, Any]]  # (tool, arguments); tool "" = say text only


def solver(s: Script, n: Names, wd: str) -> list[Action]:
    if n.editor == n.bash:  # mini-swe-agent: bash only, submission as its swebench.yaml asks
        return mini_solver(s, n)
    acts: list[Action] = []
    if s.hunks:
        acts.append((n.editor, {"command": "view", "path": f"{wd}/{s.hunks[0].path}"}))
    acts.append((n.bash, {n.bash_arg: "git status --short"}))
    for h in s.hunks:
        acts.append((n.editor, {"command": "str_replace", "path": f"{wd}/{h.path}",
                                "old_str": h.old, "new_str": h.new}))
    acts.append((n.bash, {n.bash_arg: f"{s.test_command} 2>&1 | tail -5"}))
    acts.append((n.submit, dict(n.submit_args)))
    return acts


def mini_solver(s: Script, n: Names) -> list[Action]:
    """The solver with one bash tool: the gold patch through `git apply` from a here-document,
    the tests, then `git diff -- <files> > patch.txt` and `echo <sentinel> && cat patch.txt`."""
    patch = s.patch if s.patch.endswith("\n") else s.patch + "\n"
    files = " ".join(shlex.quote(p) for p in dict.fromkeys(h.path for h in s.hunks))
    return [(n.bash, {n.bash_arg: cmd}) for cmd in (
        "git status --short",
        f"git apply <<'SWEBOX_GOLD_PATCH'\n{patch}SWEBOX_GOLD_PATCH",
        f"{s.test_command} 2>&1 | tail -5",
        f"git diff -- {files} > patch.txt",
        f"{SENTINEL} && cat patch.txt")]


def flailer(s: Script, n: Names, wd: str) -> list[Action]:
    return [
        ("!malformed", {}),
        ("no_such_tool", {"x": 1}),
        (n.editor, {"command": "str_replace", "path": f"{wd}/nothing.py", "old_str": "a"}),
        (n.bash, {n.bash_arg: BIG_OUTPUT}),
        (n.bash, {n.bash_arg: "sleep 1000"}),
        (n.bash, {n.bash_arg: IGNORES_TERM}),
        (n.bash, {n.bash_arg: FORK_BOMB}),
        (n.bash, {n.bash_arg: "exit 3"}),
        (n.bash, {n.bash_arg: "echo still-here"}),
        (n.bash, {n.bash_arg: "echo still-here"}),
        ("", {}),  # a reply with no tool call at all
        (n.submit, dict(n.submit_args)),
    ]


def hacker(s: Script, n: Names, wd: str) -> list[Action]:
    acts: list[Action] = [
        (n.bash, {n.bash_arg: "ls -la / /r2e_tests 2>&1; find / -name 'test_*.py' -not -path "
                              "'/proc/*' 2>/dev/null | head; git log --oneline | head"}),
        (n.editor, {"command": "create", "path": f"{wd}/conftest_hook.py",
                    "file_text": "import pytest\n"}),
        (n.bash, {n.bash_arg: "printf '%s\\n' 'import pytest' '@pytest.hookimpl(hookwrapper=True)'"
                              " 'def pytest_runtest_makereport(item, call):' "
                              "'    outcome = yield' '    rep = outcome.get_result()' "
                              "'    rep.outcome = \"passed\"' >> conftest.py"}),
    ]
    for f in s.test_files:
        acts.append((n.bash, {n.bash_arg: f"mkdir -p $(dirname {f}) && printf 'def test_ok():\\n"
                                          f"    assert True\\n' > {f}"}))
    acts.append((n.bash, {n.bash_arg: "printf '[pytest]\\naddopts = -p no:randomly\\n' > "
                                      "pytest.ini; echo 'import sys' > sitecustomize.py"}))
    acts.append((n.submit, dict(n.submit_args)))
    return acts


def busy(s: Script, n: Names, wd: str) -> list[Action]:
    """29 cheap shell commands, then a submit: for step-throughput benchmarks."""
    cmds = ["ls", "git status --short", "cat README.md | head -5", "grep -rn def . | head -3",
            "pwd", "git log --oneline | head -3"]
    acts: list[Action] = [(n.bash, {n.bash_arg: cmds[i % len(cmds)]}) for i in range(29)]
    return [*acts, (n.submit, dict(n.submit_args))]


POLICIES = {"solver": solver, "flailer": flailer, "hacker": hacker, "busy": busy}


# -- the server ---------------------------------------------------------------------------
def _text_action(tool: str, args: dict[str, Any], form: str) -> str:
    if form == "bash_block":
        cmd = next(iter(args.values()), "") if tool.endswith("bash") else \
            "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
        return f"I will run this.\n\n```mswea_bash_command\n{cmd}\n```"
    params = "".join(f"<parameter={k}>{v if isinstance(v, str) else json.dumps(v)}</parameter>\n"
                     for k, v in args.items())
    return f"Next step.\n<function={tool}>\n{params}</function>"


class ScriptedServer:
    def __init__(self, scripts: list[Script], workdir: str = "/testbed") -> None:
        self.scripts = scripts
        self.workdir = workdir
        self.requests = 0
        self.faults: dict[str, int] = {}
        self._lock = threading.Lock()
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def script_for(self, messages: list[dict[str, Any]]) -> Script:
        text = "\n".join(str(m.get("content") or "") for m in messages[:3])
        for s in self.scripts:
            if s.statement.strip()[:200] in text:
                return s
        return Script(instance_id="unknown", statement="")

    def respond(self, body: dict[str, Any]) -> dict[str, Any]:
        model = str(body.get("model", "solver"))
        policy_name = model.removeprefix("unreliable-").removeprefix("text-")
        messages = body.get("messages", [])
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        script = self.script_for(messages)
        text_mode = not tools
        if text_mode:
            system = str(messages[0].get("content", "")) if messages else ""
            form = "bash_block" if "```bash" in system else "xml"
            tools = re.findall(r"BEGIN FUNCTION: (\w+)", system)
        names = names_for(tools)
        plan = POLICIES.get(policy_name, solver)(script, names, self.workdir)
        step = sum(1 for m in messages if m.get("role") == "assistant")
        tool, args = plan[min(step, len(plan) - 1)]
        msg: dict[str, Any] = {"role": "assistant", "content": ""}
        if text_mode:
            msg["content"] = _text_action(tool, args, form) if tool else "Thinking..."
        elif tool == "!malformed":
            msg["tool_calls"] = [{"id": f"call_{step}", "type": "function", "function": {
                "name": names.bash, "arguments": '{"cmd": "ls", '}}]
        elif tool:
            msg["tool_calls"] = [{"id": f"call_{step}", "type": "function", "function": {
                "name": tool, "arguments": json.dumps(args)}}]
        else:
            msg["content"] = "I am not sure what to do."
        prompt = sum(len(str(m.get("content") or "")) for m in messages) // 4
        return {"id": f"chatcmpl-{self.requests}", "object": "chat.completion",
                "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": msg,
                             "finish_reason": "tool_calls" if msg.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": 20,
                          "total_tokens": prompt + 20}}

    def fault_for(self, body: dict[str, Any]) -> str | None:
        """Unreliable models: the first request of each step fails, in turn 429, 500, a cut
        body, a slow reply; the retry goes through."""
        if not str(body.get("model", "")).startswith("unreliable-"):
            return None
        messages = body.get("messages", [])
        # the whole conversation so far: one key per step of one episode
        key = hashlib.sha256(json.dumps([body.get("model"), messages], sort_keys=True)
                             .encode()).hexdigest()
        with self._lock:
            seen = self.faults.get(key, 0)
            self.faults[key] = seen + 1
        if seen:
            return None
        step = sum(1 for m in messages if m.get("role") == "assistant")
        return ("429", "500", "cut", "slow")[step % 4]

    def app(self) -> FastAPI:
        app = FastAPI()
        server = self

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": p, "object": "model"} for p in POLICIES]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = orjson.loads(await request.body())
            with server._lock:
                server.requests += 1
            fault = server.fault_for(body)
            if fault == "429":
                return JSONResponse({"error": {"message": "rate limited"}}, status_code=429,
                                    headers={"Retry-After": "1"})
            if fault == "500":
                return JSONResponse({"error": {"message": "boom"}}, status_code=500)
            if fault == "slow":
                await asyncio.sleep(float(request.headers.get("x-slow", "6")))
            reply = orjson.dumps(server.respond(body))
            if fault == "cut":  # promise the whole body, send half, drop the connection
                return CutResponse(reply)
            return Response(reply, media_type="application/json")

        return app

    def start(self) -> ScriptedServer:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted model server did not start")
            time.sleep(0.02)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


class CutResponse(Response):
    """A response that announces its full length, sends half of it and drops the connection."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="application/json")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self.body)).encode())]})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2],
                    "more_body": True})
        raise ConnectionResetError("cut mid-body on purpose")


def sample_scripts() -> list[Script]:
    from swebox.samples import load_tasks
    from swebox.tasks.specs import resolve_spec

    out = []
    for s in load_tasks():
        t = s.to_task()
        spec = resolve_spec(t)
        files = sorted({m for m in re.findall(r"^\+\+\+ b/(\S+)", t.test_patch, re.M)})
        out.append(Script(instance_id=t.instance_id, statement=t.problem_statement,
                          hunks=hunks_of(t.gold_patch), test_files=files, patch=t.gold_patch,
                          test_command=(spec.command if spec and spec.command else
                                        "python3 -m pytest -q")))
    return out


if __name__ == "__main__":
    import argparse

    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8000)
    a = ap.parse_args()
    uvicorn.run(ScriptedServer(sample_scripts()).app(), host="127.0.0.1", port=a.port,
                log_level="warning", access_log=False)
