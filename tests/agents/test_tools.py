"""The tools on a real sandbox: the editor's semantics (one implementation, every dialect's
texts), the persistent bash with its in-sandbox timeout and capped output, search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swebox.agents import EpisodeLimits, SweEnv, ToolCall
from swebox.tasks.model import Task

FILE = "/testbed/tinyini/loader.py"


@pytest.fixture(scope="module")
def env(sample_tasks: dict[str, Task]) -> Iterator[SweEnv]:
    e = SweEnv(sample_tasks["ini_loader"], limits=EpisodeLimits(max_steps=500, bash_timeout=5,
                                                                output_chars=2000))
    e.reset()
    yield e
    e.close()


def call(env: SweEnv, name: str, **args: object) -> str:
    obs, _, done, _ = env.step(ToolCall(name=name, arguments=dict(args)))
    assert not done
    return obs


def edit(env: SweEnv, **args: object) -> str:
    return call(env, "str_replace_editor", **args)


def test_view_numbers_lines_and_honours_ranges(env: SweEnv) -> None:
    whole = edit(env, command="view", path=FILE)
    assert whole.startswith(f"Here's the result of running `cat -n` on {FILE}:\n")
    assert "     1\t\"\"\"" in whole
    part = edit(env, command="view", path="tinyini/loader.py", view_range=[2, 3])
    body = part.split("\n", 1)[1]
    assert body.startswith("     2\t") and "     4\t" not in part
    assert "should be within the range" in edit(env, command="view", path=FILE,
                                                view_range=[0, 3])
    assert "larger or equal" in edit(env, command="view", path=FILE, view_range=[5, 2])
    tree = edit(env, command="view", path="/testbed")
    assert "/testbed/tinyini/loader.py" in tree and ".git" not in tree


def test_str_replace_needs_a_unique_match(env: SweEnv) -> None:
    env.seat.sandbox.write_file("/testbed/t1.py", "a = 1\nb = 1\nc = 2\n")  # type: ignore
    none = edit(env, command="str_replace", path="t1.py", old_str="zz = 9", new_str="x")
    assert none == ("No replacement was performed, old_str `zz = 9` did not appear verbatim "
                    "in /testbed/t1.py.")
    many = edit(env, command="str_replace", path="t1.py", old_str=" = 1", new_str=" = 3")
    assert "Multiple occurrences of old_str ` = 1` in lines [1, 2]" in many
    ok = edit(env, command="str_replace", path="t1.py", old_str="b = 1", new_str="b = 5\nb2 = 6")
    assert "has been edited" in ok and "     2\tb = 5" in ok and "     3\tb2 = 6" in ok
    assert env.seat.sandbox.read_text("/testbed/t1.py") == "a = 1\nb = 5\nb2 = 6\nc = 2\n"  # type: ignore
    ins = edit(env, command="insert", path="t1.py", insert_line=0, new_str="# head")
    assert "     1\t# head" in ins
    assert "should be within the range" in edit(env, command="insert", path="t1.py",
                                                insert_line=99, new_str="x")
    undo = edit(env, command="undo_edit", path="t1.py")
    assert undo.startswith("Last edit to /testbed/t1.py undone successfully.")
    edit(env, command="undo_edit", path="t1.py")
    assert env.seat.sandbox.read_text("/testbed/t1.py") == "a = 1\nb = 1\nc = 2\n"  # type: ignore
    assert edit(env, command="undo_edit", path="t1.py") == \
        "No edit history found for /testbed/t1.py."


def test_create_and_its_refusals(env: SweEnv) -> None:
    assert edit(env, command="create", path="new/dir/m.py", file_text="x = 1\n") == \
        "File created successfully at: /testbed/new/dir/m.py"
    assert "Cannot overwrite" in edit(env, command="create", path="new/dir/m.py", file_text="")
    assert "does not exist" in edit(env, command="view", path="nope.py")
    assert "only the `view` command" in edit(env, command="str_replace", path="new",
                                             old_str="a", new_str="b")
    assert "Unrecognized command delete" in edit(env, command="delete", path="t1.py")
    assert "`file_text` is required" in edit(env, command="create", path="n2.py")


def test_an_edit_keeps_the_file_mode(env: SweEnv) -> None:
    sb = env.seat.sandbox  # type: ignore[union-attr]
    sb.exec("printf '#!/bin/sh\\necho one\\n' > run.sh && chmod 755 run.sh && git add run.sh "
            "&& git -c user.email=a@b -c user.name=n commit -qm s", cwd="/testbed")
    edit(env, command="str_replace", path="run.sh", old_str="one", new_str="two")
    assert sb.exec("stat -c %a run.sh", cwd="/testbed").output.strip() == "755"
    diff = sb.exec("git diff run.sh", cwd="/testbed").output
    assert "+echo two" in diff and "mode" not in diff


def test_bash_persists_state_caps_output_and_times_out(env: SweEnv) -> None:
    call(env, "bash", command="cd tinyini && export SWX=42")
    out = call(env, "bash", command="pwd; echo $SWX")
    assert out == "/testbed/tinyini\n42\n[exit code: 0]"
    assert call(env, "bash", command="false").endswith("[exit code: 1]")
    big = call(env, "bash", command="seq 1 200000")
    assert len(big) < 2200 and "characters of output elided" in big
    assert big.startswith("1\n2\n") and "200000" in big
    slow = call(env, "bash", command="sleep 60", timeout=1)
    assert "timed out after 1 s" in slow
    assert call(env, "bash", command="echo alive").startswith("alive")
    ps = call(env, "bash", command="ps -eo args | grep -c '[s]leep 60' || true")
    assert ps.startswith("0")  # killed inside the sandbox, not only given up on
    call(env, "bash", command="cd /testbed")


def test_search_text_and_files(env: SweEnv) -> None:
    hits = call(env, "search", pattern="def loads")
    assert "./tinyini/loader.py (1)" in hits
    assert "No matches" in call(env, "search", pattern="zzz-nothing-zzz")
    in_file = call(env, "search", pattern="def ", path=FILE)
    assert in_file.split("\n")[0].split(":")[0].isdigit()
    files = call(env, "search", pattern="test_*.py", files=True)
    assert "/testbed/tests/test_config.py" in files


@pytest.mark.parametrize("dialect,tool,texts", [
    ("r2e", "file_editor", ["Execution output of [file_editor]:\nERROR: No occurrences of "
                            "'zz' found in /testbed/tinyini/loader.py for replacement."]),
    ("openhands", "str_replace_editor", ["ERROR:\nNo replacement was performed, old_str `zz` "
                                         "did not appear verbatim in /testbed/tinyini/loader.py."]),
    ("sweagent", "str_replace_editor", ["No replacement was performed, old_str `zz` did not "
                                        "appear verbatim in /testbed/tinyini/loader.py."]),
])
def test_dialect_texts(sample_tasks: dict[str, Task], dialect: str, tool: str,
                       texts: list[str]) -> None:
    with SweEnv(sample_tasks["ini_loader"], dialect=dialect) as env:
        env.reset()
        obs = call(env, tool, command="str_replace", path=FILE, old_str="zz", new_str="y")
        assert obs == texts[0]
        rel = call(env, tool, command="view", path="tinyini/loader.py")
        if dialect == "r2e":  # R2E resolves relative paths and numbers views with a space
            assert "     1 \"\"\"" in rel
            bash = call(env, "execute_bash", cmd="echo out; echo err >&2; exit 3")
            assert bash.startswith("Exit code: Error: Exit code 3\nExecution output of "
                                   "[execute_bash]:\nError executing command:\n\n[STDOUT]\n\nout")
            assert "[STDERR]\n\nerr" in bash
            assert "is not allowed" in call(env, "execute_bash", cmd="cd /tmp")
        else:
            assert "absolute path" in rel and "Maybe you meant /testbed/tinyini/loader.py" in rel
        if dialect == "openhands":
            bash = call(env, "execute_bash", command="cd tinyini; false")
            assert bash.endswith("[The command completed with exit code 1.]\n[Current working "
                                 "directory: /testbed/tinyini]\n[Command finished with exit "
                                 "code 1]")
        if dialect == "sweagent":
            assert call(env, "execute_bash", command="true") == \
                "Your command ran successfully and did not produce any output."
            assert call(env, "bash", command="echo via-alias").startswith("via-alias")
