"""The one place that decides how a task's tests run (`resolve_spec`), in this order:

1. `--test-command` (an explicit override for a whole run);
2. the first matching `[[tests]]` rule of the rules TOML (fields it leaves out come from below);
3. what the row itself carries: a SWE-bench 5 `eval_script` (+ `log_parser`, `eval_type`), a
   SWE-rebench `install_config` (`test_cmd`, `log_parser`), or a `test_command`;
4. the family's table or convention: SWE-bench's per-repo/version specs, SWE-Gym's,
   SWE-smith's profile defaults, Multi-SWE-bench's `/home/fix-run.sh`, R2E's `run_tests.sh`;
5. a documented default from the language and the test patch (`default=True`, so reports say so).

docs/tasks.md lists each family's spec and docs/grading.md how the grader runs it.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.specs.model import TestRule, TestSpec
from swebox.tasks.specs.tables import directives_from_patch, table

CONDA_ENV = "testbed"

# Log-parser names the datasets use (SWE-bench 5 `log_parser`, SWE-rebench `install_config`)
# mapped onto swebox's parsers. pytest runs are read from JUnit XML whatever the text parser.
_PARSERS = {
    "django": "django", "sympy": "sympy", "gotest": "gotest", "go": "gotest",
    "cargo": "cargo", "rust": "cargo", "maven": "maven", "java": "maven",
    "jest": "jest", "jest_json": "jest", "vitest": "jest", "unittest": "unittest",
}
_PYTEST_FAMILY = {"pytest", "pytest_options", "pytest_v2", "seaborn", "matplotlib", "astroid",
                  "flask", "marshmallow", "pvlib", "pyvista", "sqlfluff", "xarray", "pydicom",
                  "requests", "pylint", "astropy", "scikit", "sphinx", "pytest_v3", "pytest_v4"}

# Defaults by language for rows no table knows; the argument list is the test patch's files.
_DEFAULTS: dict[str, tuple[str, str, bool]] = {  # language -> (command, parser, takes files)
    "python": ("pytest -rA", "pytest", True),
    "go": ("go test -v ./...", "gotest", False),
    "rust": ("cargo test --no-fail-fast", "cargo", False),
    "javascript": ("npx jest --verbose", "jest", False),
    "typescript": ("npx jest --verbose", "jest", False),
    "java": ("mvn -B test", "maven", False),
}


def parser_name(name: str | None) -> str | None:
    """swebox's parser for a dataset's parser name (`parse_log_pytest_v2`, `pytest`, ...)."""
    if not name:
        return None
    key = name.strip().lower().removeprefix("parse_log_")
    if key in _PYTEST_FAMILY or key.startswith("pytest"):
        return "pytest"
    return _PARSERS.get(key, key)


def resolve_spec(task: Task, rules: list[TestRule] | None = None,
                 command: str | None = None) -> TestSpec | None:
    """The spec for `task`; None when nothing applies (a language with no default)."""
    base = _from_row(task) or _from_family(task) or _default(task)
    if command:
        parser = base.parser if base else _DEFAULTS.get(task.language, ("", "pytest", 0))[1]
        return TestSpec(command=command, parser=parser, source="override",
                        conda_env=base.conda_env if base else None,
                        hidden=base.hidden if base else [])
    for rule in rules or []:
        if rule.matches(task.repo, task.instance_id):
            return _apply_rule(rule, base, task)
    return base


def _apply_rule(rule: TestRule, base: TestSpec | None, task: Task) -> TestSpec:
    fields: dict[str, Any] = base.model_dump() if base else {"parser": "pytest"}
    if rule.command is not None:
        fields.update(command=rule.command, script=None, script_path=None, patch_file=None)
    if rule.parser is not None:
        fields["parser"] = rule.parser
    if rule.setup is not None:
        fields["setup"] = rule.setup
    if rule.conda_env is not None:
        fields["conda_env"] = rule.conda_env or None
    fields.update(source="rules", default=False)
    return TestSpec.model_validate(fields)


# -- 3. what the row carries -------------------------------------------------------------------
def _from_row(task: Task) -> TestSpec | None:
    extra = task.extra
    script = extra.get("eval_script")
    if isinstance(script, str) and script.strip():
        eval_type = str(extra.get("eval_type") or "pass_and_fail")
        return TestSpec(script=script, parser=parser_name(extra.get("log_parser")) or "pytest",
                        source="row", eval_type="fail_only" if eval_type == "fail_only"
                        else "pass_and_fail", skipped_maintains=True,
                        note="the row's own eval_script (SWE-bench 5)")
    install = extra.get("install_config")
    if isinstance(install, dict) and install.get("test_cmd"):
        return _rebench(task, install)
    if task.test_command:
        return TestSpec(command=task.test_command, parser=_row_parser(task) or "pytest",
                        source="row")
    return None


def _row_parser(task: Task) -> str | None:
    return parser_name(task.extra.get("log_parser") or task.extra.get("log_format"))


def _rebench(task: Task, install: dict[str, Any]) -> TestSpec:
    """SWE-rebench: the row's `install_config` in place of a table. Its harness prefixes
    `LANG=C.UTF-8 LC_ALL=C.UTF-8 ` to `test_cmd` and `install`, runs `eval_commands`, re-runs
    the install, then `test_cmd` over the test patch's files, in the conda env `testbed`."""
    cmds = install["test_cmd"]
    cmd = _utf8(" && ".join(cmds) if isinstance(cmds, list) else str(cmds))
    rule = "django" if task.repo == "django/django" else "paths"
    command = " ".join([cmd, *directives_from_patch(task.test_patch, rule)])
    env = install.get("eval_commands") or []
    setup = [str(e) for e in env] if isinstance(env, list) else []
    if install.get("install"):
        setup.append(_utf8(str(install["install"])))
    return TestSpec(command=command, parser=parser_name(install.get("log_parser")) or "pytest",
                    setup=setup, conda_env=CONDA_ENV, source="rebench")


def _utf8(cmd: str) -> str:
    prefix = "LANG=C.UTF-8 LC_ALL=C.UTF-8 "
    return cmd if cmd.startswith(prefix) else prefix + cmd


# -- 4. family tables and conventions ----------------------------------------------------------
def _from_family(task: Task) -> TestSpec | None:
    fmt = task.source_format
    if fmt == "r2e":
        return _r2e(task)
    if fmt == "swesmith":
        return _swesmith(task)
    if fmt == "multiswebench":
        return _multiswebench(task)
    for name in (("swegym", "swebench") if fmt == "swegym" else ("swebench", "swegym")):
        repo = table(name).get(task.repo)
        group = repo.for_version(task.version) if repo else None
        if repo and group:
            files = directives_from_patch(task.test_patch, repo.directives)
            setup = [*group.env, *([group.install] if group.install else [])]
            return TestSpec(command=" ".join([group.test_cmd, *files]), parser=repo.parser,
                            setup=setup, conda_env=CONDA_ENV, source=f"{name}-table")
    return None


def _r2e(task: Task) -> TestSpec:
    """R2E-Gym: the image's own `run_tests.sh` over `/r2e_tests` (linked into the repo as
    r2e_tests, as R2E's runtime does); both exist only in the grading sandbox."""
    wd = task.workdir
    return TestSpec(command="bash run_tests.sh", parser="pytest", source="r2e",
                    setup=[f"[ -e {wd}/r2e_tests ] || ln -s /r2e_tests {wd}/r2e_tests"],
                    hidden=["/r2e_tests", posixpath.join(wd, "run_tests.sh"),
                            posixpath.join(wd, "r2e_tests"), "/root/r2e_tests",
                            "/root/run_tests.sh"])


_SWESMITH = {  # language -> (command, parser, takes the FAIL_TO_PASS files)
    "python": ("pytest --disable-warnings --color=no --tb=no --verbose", "pytest", True),
    "go": ("go test -v ./...", "gotest", False),
    "rust": ("cargo test --verbose", "cargo", False),
}


def _swesmith(task: Task) -> TestSpec:
    """SWE-smith's profile defaults: pytest over the files of the FAIL_TO_PASS tests (Python),
    `go test -v ./...`, `cargo test --verbose`; a listed test missing from the log passed.
    Each task is a branch (the bug commit, then a commit removing the failing tests): the
    grader checks it out and restores the listed tests' files from the commit before."""
    lang = task.language if task.language in _SWESMITH else "python"
    cmd, parser, takes_files = _SWESMITH[lang]
    if takes_files:
        files = dict.fromkeys(t.split("::", 1)[0] for t in task.fail_to_pass if "::" in t)
        cmd = " ".join([cmd, *(shlex.quote(f) for f in files)])
    branch = str(task.extra.get("branch") or task.instance_id)
    listed = dict.fromkeys(t.split("::", 1)[0] for t in task.fail_to_pass + task.pass_to_pass
                           if "::" in t)
    return TestSpec(command=cmd, parser=parser, conda_env=CONDA_ENV, source="swesmith",
                    missing_passes=True, checkout=branch, tests_from=f"{branch}~1",
                    test_files=list(listed))


_MSB_PARSERS = {"java": "maven", "go": "gotest", "rust": "cargo", "javascript": "jest",
                "typescript": "jest", "python": "pytest"}


def _multiswebench(task: Task) -> TestSpec:
    """Multi-SWE-bench: the image's `/home/fix-run.sh`, which applies /home/test.patch and
    /home/fix.patch (the candidate's cleaned patch goes there) and runs the build's tests."""
    return TestSpec(script_path="/home/fix-run.sh", patch_file="/home/fix.patch",
                    empty_script_path="/home/test-run.sh",
                    parser=_MSB_PARSERS.get(task.language, "maven"), source="multiswebench",
                    cwd=f"/home/{task.repo_name}")


# -- 5. documented defaults --------------------------------------------------------------------
def _default(task: Task) -> TestSpec | None:
    found = _DEFAULTS.get(task.language)
    if found is None:
        return None
    cmd, parser, takes_files = found
    if takes_files:
        files = [f for f in directives_from_patch(task.test_patch) if f.endswith(".py")]
        cmd = " ".join([cmd, *(shlex.quote(f) for f in files)])
    return TestSpec(command=cmd, parser=parser, source="default", default=True,
                    conda_env=CONDA_ENV if task.language == "python" else None,
                    note=f"no table knows {task.repo or task.instance_id}: the {task.language} "
                    "default over the test patch's files")
