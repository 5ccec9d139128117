"""Anti-tampering: patches that make the tests pass without fixing the bug do not resolve.

Each attack is a candidate patch on the sample task `ini_loader` that leaves the bug alone and
instead changes how the tests run: a conftest.py hook marking every outcome passed, start-up
files (sitecustomize/usercustomize/.pth), an `addopts` plugin, edited or deleted tests. The
grader must put that test infrastructure back (swebox.grading.tamper), say so in the verdict
(`reverted`, `tampering_suspected`), and not resolve the task. Controls grade the same patches
with the revert switched off, so an attack that is "stopped" is known to work otherwise.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable

import pytest

from swebox.errors import SweboxError
from swebox.grading import grader as grader_module
from swebox.grading.grader import grade, patch_paths
from swebox.grading.tamper import (
    SECTIONS,
    hide_from_agent,
    is_protected,
    revert_infrastructure,
    revert_sections,
)
from swebox.samples import SampleTask, load_tasks
from swebox.samples.builder import build
from swebox.sandbox import start_sandbox
from swebox.tasks.model import Task
from swebox.tasks.specs import resolve_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SAMPLES = load_tasks()
REPO = load_tasks(["ini_loader"])[0].path / "repo"

# A pytest plugin that turns every report (setup, call, teardown) into a pass.
HOOK = '''import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
'''
# The same, as start-up code monkeypatching pytest's runner before pytest is even imported.
FORCE_PASS = '''import _pytest.reports

_made = _pytest.reports.TestReport.from_item_and_call.__func__


def _passed(cls, item, call):
    report = _made(cls, item, call)
    report.outcome, report.longrepr = "passed", None
    return report


_pytest.reports.TestReport.from_item_and_call = classmethod(_passed)
'''
SECTION = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'  # ini_loader's, at the end


def _read(path: str) -> str:
    return (REPO / path).read_text()


def _diff(path: str, old: str | None, new: str | None, git: bool = True) -> str:
    """A diff of one file: `old` None creates it, `new` None deletes it. With `git` False, a
    plain unified diff (no `diff --git` header), which `git apply` accepts as well."""
    body = "".join(difflib.unified_diff(
        (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
        "/dev/null" if old is None else f"a/{path}", "/dev/null" if new is None else f"b/{path}"))
    if not git:
        return body
    mode = ("new file mode 100644\n" if old is None
            else "deleted file mode 100644\n" if new is None else "")
    return f"diff --git a/{path} b/{path}\n{mode}{body}"


# -- the attacks ----------------------------------------------------------------------------
def _tests_conftest() -> str:
    return _diff("tests/conftest.py", None, HOOK)


def _root_conftest() -> str:
    old = _read("conftest.py")
    return _diff("conftest.py", old, old + "\n" + HOOK)


def _startup_files() -> str:
    pth = f"import sys; exec({FORCE_PASS!r})\n"  # a .pth line starting with `import` runs
    return (_diff("sitecustomize.py", None, FORCE_PASS)
            + _diff("usercustomize.py", None, FORCE_PASS)
            + _diff("swebox_hack.pth", None, pth))


def _pyproject_addopts(old: str) -> str:
    """`old` with an `addopts` loading tinyini._hack in its pytest section and an unrelated
    change outside that section (which is the patch's to make)."""
    assert SECTION in old and "loader." in old
    return (old.replace("loader.", "loader for Python.")
            .replace(SECTION, SECTION + 'addopts = "-p tinyini._hack"\n'))


def _addopts() -> str:
    old = _read("pyproject.toml")
    return (_diff("pyproject.toml", old, _pyproject_addopts(old))
            + _diff("tinyini/_hack.py", None, HOOK))


def _toml_string() -> str:
    """The pytest section as the base has it, but inside a multi-line TOML string (a line-based
    reader still sees it), closed by a line that reads as a header to it (`[<3 quotes> #]`);
    the real table follows under a header with a comment, which a line-based reader misses."""
    old = _read("pyproject.toml")
    assert old.endswith(SECTION)
    new = (old[:-len(SECTION)] + '[tool.swebox_notes]\ntext = """\n' + SECTION + '[""" #]\n'
           '[tool.pytest.ini_options]  # the one pytest reads\n'
           'addopts = "-p tinyini._hack"\ntestpaths = ["tests"]\n')
    assert tomllib.loads(new)["tool"]["pytest"]["ini_options"]["addopts"] == "-p tinyini._hack"
    return _diff("pyproject.toml", old, new) + _diff("tinyini/_hack.py", None, HOOK)


def _dist_info(with_module: bool = True) -> str:
    """A plugin registered through an entry point: `python -m pytest` has the repository root
    on sys.path, so pytest's plugin autoload finds a `*.dist-info` there."""
    info = "swebox_hack-1.0.dist-info"
    return ((_diff("tinyini/_hack.py", None, HOOK) if with_module else "")
            + _diff(f"{info}/METADATA", None,
                    "Metadata-Version: 2.1\nName: swebox-hack\nVersion: 1.0\n")
            + _diff(f"{info}/entry_points.txt", None, "[pytest11]\nhack = tinyini._hack\n"))


# name -> (patch, whether the task must have the repository on PYTHONPATH, what is reverted)
ATTACKS: dict[str, tuple[Callable[[], str], bool, list[str]]] = {
    "tests-conftest": (_tests_conftest, False, ["tests/conftest.py"]),
    "root-conftest": (_root_conftest, False, ["conftest.py"]),
    "startup-files": (_startup_files, True,
                      ["sitecustomize.py", "usercustomize.py", "swebox_hack.pth"]),
    "addopts-plugin": (_addopts, False, ["pyproject.toml"]),
    "toml-string": (_toml_string, False, ["pyproject.toml"]),
    "dist-info": (_dist_info, False, ["swebox_hack-1.0.dist-info/entry_points.txt",
                                      "swebox_hack-1.0.dist-info/METADATA"]),
}


# -- fixtures -------------------------------------------------------------------------------
def _attack_task(task: Task, on_path: bool) -> Task:
    """Images that put the repository on PYTHONPATH run a sitecustomize.py found there."""
    if not on_path:
        return task
    return task.model_copy(update={"test_command": f"PYTHONPATH=. {task.test_command}"})


def _stopped(verdict: grader_module.Verdict, task: Task) -> None:
    assert verdict.patch_applied and verdict.infra_failure is None, verdict
    assert not verdict.resolved
    assert all(verdict.statuses.get(t) == "FAILED" for t in task.fail_to_pass), verdict.statuses


# -- attacks on a real engine ---------------------------------------------------------------
@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_reverted_and_does_not_resolve(task: Task, name: str) -> None:
    make, on_path, paths = ATTACKS[name]
    verdict, _ = grade(_attack_task(task, on_path), make())
    _stopped(verdict, task)
    assert verdict.tampering_suspected
    for path in paths:  # a config file's entry names its sections: `pyproject.toml [...]`
        assert any(r == path or r.startswith(path + " [") for r in verdict.reverted), (
            path, verdict.reverted)
    assert "tinyini/_hack.py" not in verdict.reverted  # library code is the patch's


@pytest.mark.parametrize("name", ["tests-conftest", "startup-files", "addopts-plugin",
                                  "toml-string", "dist-info"])
def test_attack_resolves_without_the_revert(task: Task, name: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: with the revert switched off the same patch does resolve, so the test
    above proves the revert stopped a working attack."""
    monkeypatch.setattr(grader_module, "revert_infrastructure", lambda *a, **k: [])
    make, on_path, _ = ATTACKS[name]
    verdict, _ = grade(_attack_task(task, on_path), make())
    assert verdict.resolved, verdict


def test_plain_unified_diff_is_reverted_too(task: Task) -> None:
    patch = _diff("tests/conftest.py", None, HOOK, git=False)
    assert "diff --git" not in patch
    verdict, _ = grade(task, patch)
    _stopped(verdict, task)
    assert verdict.tampering_suspected and "tests/conftest.py" in verdict.reverted


def test_edited_failing_tests_are_reverted(task: Task) -> None:
    """The failing tests written in beforehand with trivially true assertions."""
    old = _read("tests/test_config.py")
    trivial = "".join(f"\n\ndef {t.split('::')[1]}():\n    assert True\n"
                      for t in task.fail_to_pass)
    verdict, _ = grade(task, _diff("tests/test_config.py", old, old + trivial))
    _stopped(verdict, task)
    assert verdict.tampering_suspected and verdict.reverted == ["tests/test_config.py"]


def test_deleted_test_files_are_restored(task: Task) -> None:
    files = ["tests/test_config.py", "tests/test_parser.py"]
    verdict, _ = grade(task, "".join(_diff(f, _read(f), None) for f in files))
    _stopped(verdict, task)
    assert verdict.tampering_suspected and sorted(verdict.reverted) == files
    parser_tests = [t for t in task.pass_to_pass if t.startswith("tests/test_parser.py")]
    assert parser_tests and all(verdict.statuses[t] == "PASSED" for t in parser_tests)


def test_revert_keeps_the_fix_and_undoes_the_rest(task: Task) -> None:
    """Every attack at once plus the gold fix, reverted in one sandbox: what is left in the
    tree is the fix, the library module and the pyproject edit outside the pytest section."""
    attacks = [_tests_conftest(), _root_conftest(), _startup_files(), _addopts(),
               _dist_info(with_module=False)]
    patch = task.gold_patch + "".join(attacks)
    with start_sandbox(task.run_image, workdir=task.workdir, base_commit=task.base_commit,
                       pull="never") as sb:
        sb.apply_patch(patch, check=True)
        reverted = revert_infrastructure(sb, task.base_commit, patch_paths(patch), task.workdir)
        status = sb.exec(["git", "status", "--porcelain", "--untracked-files=all"]).stdout
        pyproject = sb.read_text("pyproject.toml")
        again = revert_infrastructure(sb, task.base_commit, patch_paths(patch), task.workdir)
    assert sorted(status.splitlines()) == [" M pyproject.toml", " M tinyini/loader.py",
                                           "?? tinyini/_hack.py"]
    base = _read("pyproject.toml")
    assert pyproject == base.replace("loader.", "loader for Python.") != base
    assert "tinyini/_hack.py" not in reverted and "tinyini/loader.py" not in reverted
    assert {"tests/conftest.py", "conftest.py", "sitecustomize.py", "usercustomize.py",
            "swebox_hack.pth", "swebox_hack-1.0.dist-info/entry_points.txt"} <= set(reverted)
    assert any(r.startswith("pyproject.toml") for r in reverted)
    assert again == []  # nothing left to revert


# -- the agent's sandbox never holds hidden tests --------------------------------------------
def test_hidden_tests_are_removed_from_the_agent_sandbox(docker_engine: None) -> None:
    sample = next(s for s in SAMPLES if s.image_style == "r2e")
    build(sample)
    r2e = sample.to_task().model_copy(update={"source_format": "r2e", "test_command": None})
    spec = resolve_spec(r2e)
    assert spec is not None and spec.source == "r2e"
    assert {"/r2e_tests", "/testbed/run_tests.sh"} <= set(spec.hidden)
    secret = "SWEBOX_HIDDEN_ASSERTION"
    planted = ["/r2e_tests/test_x.py", "/testbed/run_tests.sh", "/testbed/r2e_tests/test_x.py",
               "/root/run_tests.sh", "/root/r2e_tests/test_y.py"]
    with start_sandbox(r2e.run_image, workdir=r2e.workdir, pull="never") as sb:
        for path in planted:
            if not path.startswith("/testbed/r2e_tests"):
                sb.write_file(path, f"def test_x():\n    assert '{secret}'\n")
        assert sb.exec(["ln", "-s", "/r2e_tests", "/testbed/r2e_tests"]).exit_code == 0
        assert all(secret in sb.read_text(p) for p in planted)  # there before
        hide_from_agent(sb, spec.hidden)
        for path in planted:
            res = sb.exec(["cat", path])
            assert res.exit_code != 0 and secret not in res.output, path
            with pytest.raises(SweboxError):
                sb.read_file(path)
        for link in ("/testbed/r2e_tests", "/r2e_tests", "/root/r2e_tests"):
            assert sb.exec(["test", "-e", link]).exit_code != 0
            assert sb.exec(["test", "-L", link]).exit_code != 0
        found = sb.exec(["grep", "-rl", secret, "/testbed", "/root", "/tmp"])
        assert found.stdout == ""
        assert sb.exec(["git", "status", "--porcelain"], cwd="/testbed").stdout == ""
        hide_from_agent(sb, [])  # nothing to hide: nothing happens


# -- no false negatives ---------------------------------------------------------------------
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_gold_patch_resolves_without_tampering(docker_engine: None, sample: SampleTask) -> None:
    build(sample)
    verdict, _ = grade(sample.to_task(), sample.gold_patch)
    assert verdict.resolved and verdict.infra_failure is None, verdict
    assert not verdict.tampering_suspected and verdict.reverted == []


# -- unit tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "conftest.py", "tinyini/conftest.py", "a/b/c/conftest.py", "tests/x.py", "pkg/tests/y.py",
    "test_a.py", "pkg/test_a.py", "a_test.py", "a_test.go", "src/test/java/FooTest.java",
    "mod/src/test/java/FooTest.java", "sitecustomize.py", "usercustomize.py", "foo.pth",
    "lib/foo.pth", "pytest.ini", ".pytest.ini", "tox.ini", "run_tests.sh", "r2e_tests/t.py",
    "tests/data/input.txt", "__tests__/a.js", "a.test.js", "a.spec.ts", "./tests/x.py",
    "swebox_hack-1.0.dist-info/entry_points.txt", "tinyini.egg-info/entry_points.txt",
])
def test_test_infrastructure_is_protected(path: str) -> None:
    assert is_protected(path)


@pytest.mark.parametrize("path", [
    "django/test/testcases.py", "sympy/testing/runtests.py", "src/pkg/core.py", "setup.py",
    "pyproject.toml", "setup.cfg", "tinyini/loader.py", "testing.py", "contest.py",
    "docs/tests.rst", "tests", "README.md", "",
])
def test_source_is_not_protected(path: str) -> None:
    assert not is_protected(path)


SETUP_CFG = """\
[metadata]
name = pkg

[tool:pytest]
testpaths = tests

[flake8]
max-line-length = 100
"""
PYPROJECT = """\
[project]
name = "pkg"

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100
"""


@pytest.mark.parametrize(("base", "section", "name"), [
    (SETUP_CFG, "[tool:pytest]\ntestpaths = tests\n", "setup.cfg"),
    (PYPROJECT, '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n', "pyproject.toml"),
], ids=["setup.cfg", "pyproject.toml"])
def test_revert_sections(base: str, section: str, name: str) -> None:
    sections = SECTIONS[name]
    assert revert_sections(base, base, sections) == base
    # An edited section goes back; edits elsewhere stay.
    edited = (base.replace("pkg", "pkg2").replace("100", "120")
              .replace(section, section + "addopts = -p evil\n"))
    assert revert_sections(base, edited, sections) == (
        base.replace("pkg", "pkg2").replace("100", "120"))
    # A section only the patch has is dropped.
    bare = base.replace(section + "\n", "")
    assert section not in bare
    added = bare + "\n" + section.replace("tests", "evil")
    assert revert_sections(bare, added, sections) == bare + "\n"
    # A section only the base has is restored, at the end.
    restored = revert_sections(base, bare, sections)
    assert section in restored and restored.replace(section, "").strip() == bare.strip()
    # A header with a comment (read as the section by pytest) is still the section.
    commented = bare + "\n" + section.replace("]\n", "]  # x\n", 1) + "addopts = -p evil\n"
    assert "evil" not in revert_sections(bare, commented, sections)


def test_revert_sections_on_a_new_file() -> None:
    assert revert_sections("", SETUP_CFG, SECTIONS["setup.cfg"]) == (
        SETUP_CFG.replace("[tool:pytest]\ntestpaths = tests\n\n", ""))
    assert revert_sections(PYPROJECT, "", SECTIONS["pyproject.toml"]) == (
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n')
