"""Test infrastructure a candidate patch may not change.

A policy trained on test rewards finds the cheap wins: a `conftest.py` hook that marks every
outcome passed, a `sitecustomize.py` or `.pth` file that patches the runner at start-up, an
`addopts` line that loads its own plugin, an edited or deleted failing test, R2E's test files.
Before the hidden tests arrive the grader puts every such path the patch touched back to the
base commit (or removes it when the base lacks it): for `setup.cfg` and `pyproject.toml` only
their test-runner sections (`tox.ini` whole). What it reverted goes into the verdict with
`tampering_suspected`.

Which files are test files is decided by name, the way SWE-bench splits a fix from its tests,
but only by names that are never source code: `tests/` and `__tests__/` directories,
`test_*.py`, `*_test.py`, `*_test.go`, Maven's `src/test/`, `*.test.js`/`*.spec.ts`; not `test/`
or `testing/` (Django's `django/test/` and SymPy's `sympy/testing/` are library code); and
package metadata (`*.dist-info/`, `*.egg-info/`), whose entry points pytest loads. Out of
reach (docs/grading.md): code the patch adds to the library itself runs inside the test process.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import sys

from swebox.errors import SweboxError
from swebox.sandbox import Sandbox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Whole files, by base name.
_FILES = ("conftest.py", "pytest.ini", "tox.ini", ".pytest.ini", "sitecustomize.py",
          "usercustomize.py", "run_tests.sh", "noxfile.py", "pytest.toml", ".pytest.toml")
_FILE_GLOBS = ("*.pth", "test_*.py", "*_test.py", "*_tests.py", "*_test.go", "*.test.js",
               "*.test.ts", "*.test.jsx", "*.test.tsx", "*.spec.js", "*.spec.ts")
_DIRS = ("tests", "__tests__", "r2e_tests")
# Package metadata: `python -m pytest` has the repository root on sys.path, where pytest's
# plugin autoload reads a `*.dist-info`'s (or `*.egg-info`'s) `[pytest11]` entry points.
_DIR_GLOBS = ("*.dist-info", "*.egg-info")
# Config files whose test-runner sections are put back (the rest of the file is the patch's).
SECTIONS: dict[str, tuple[str, ...]] = {
    "setup.cfg": ("tool:pytest", "pytest", "coverage:run"),
    "pyproject.toml": ("tool.pytest.ini_options", "tool.pytest"),
}
# A trailing comment still makes a header (pytest's INI reader and TOML both allow one).
_HEADER = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:[#;].*)?$")


def is_protected(path: str) -> bool:
    """Whether `path` (relative to the repository) is test infrastructure."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        return False
    name = parts[-1]
    if name in _FILES or any(fnmatch.fnmatchcase(name, g) for g in _FILE_GLOBS):
        return True
    if any(p in _DIRS or any(fnmatch.fnmatchcase(p, g) for g in _DIR_GLOBS)
           for p in parts[:-1]):
        return True
    return "/".join(parts).startswith("src/test/") or "/src/test/" in "/".join(parts)


def revert_sections(base: str, patched: str, sections: tuple[str, ...]) -> str:
    """`patched` with each section in `sections` as `base` has it (added when only base has
    it, dropped when only patched has it). Line-based: a section runs from its `[header]` to
    the next header, which holds for INI files and TOML tables alike."""
    want = _split(base)
    have = _split(patched)
    out: list[str] = []
    seen = set()
    for name, lines in have:
        if name in sections:
            seen.add(name)
            out.extend(next((b for n, b in want if n == name), []))
        else:
            out.extend(lines)
    for name, lines in want:
        if name in sections and name not in seen:
            out.extend(["\n", *lines] if out and not out[-1].endswith("\n\n") else lines)
    return "".join(out)


def _split(text: str) -> list[tuple[str | None, list[str]]]:
    chunks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines(keepends=True):
        m = _HEADER.match(line)
        if m:
            chunks.append((m.group(1), [line]))
        else:
            chunks[-1][1].append(line)
    return chunks


# Puts listed paths back to the base commit (git checkout) or removes them when the base has
# none; prints each path it changed so the grader can report it.
_REVERT = r"""
base=$1; shift
for f in "$@"; do
  if git cat-file -e "$base:$f" 2>/dev/null; then
    if ! git diff --quiet "$base" -- "$f" 2>/dev/null || [ ! -e "$f" ]; then
      git checkout -q "$base" -- "$f" && echo "$f"
    fi
  elif [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f" && echo "$f"
  fi
done
"""


def revert_infrastructure(sb: Sandbox, base_commit: str, touched: list[str],
                          workdir: str) -> list[str]:
    """Put the test infrastructure among `touched` (the candidate patch's paths) back to
    `base_commit` inside `sb`; returns the paths changed."""
    if not base_commit:
        return []
    whole = [p for p in touched if is_protected(p)]
    reverted = reset_to_base(sb, base_commit, whole, workdir)
    for path in touched:
        sections = SECTIONS.get(posixpath.basename(path))
        if sections is None or path in whole:
            continue
        base = sb.exec(["git", "show", f"{base_commit}:{path}"], timeout=60, cwd=workdir)
        base_text = base.stdout if base.exit_code == 0 else ""
        full = posixpath.join(workdir, path)
        try:
            patched = sb.read_file(full).decode("utf-8", errors="replace")
        except SweboxError:  # deleted by the patch: restore the base file whole
            patched = ""
        fixed = revert_sections(base_text, patched, sections)
        if path.endswith(".toml") and _pytest_table(fixed) != _pytest_table(base_text):
            # The line-based view was fooled (e.g. a header inside a multi-line string):
            # what pytest reads still differs from the base, so the whole file goes back.
            reverted += reset_to_base(sb, base_commit, [path], workdir)
            continue
        if fixed != patched:
            sb.write_file(full, fixed)
            reverted.append(f"{path} [{'/'.join(sections)}]")
    return reverted


def reset_to_base(sb: Sandbox, base_commit: str, paths: list[str], workdir: str) -> list[str]:
    """Put `paths` back to `base_commit` (removing those the base lacks); returns the paths
    that changed. Also how the hidden tests' files are reset before the test patch. Without a
    base commit nothing is touched (there is nothing to compare with)."""
    if not paths or not base_commit:
        return []
    res = sb.exec(["/bin/sh", "-c", _REVERT, "swebox-revert", base_commit, *paths],
                  timeout=120, cwd=workdir)
    return [line for line in res.stdout.splitlines() if line in paths]


def _pytest_table(text: str) -> object:
    """What pytest reads from a pyproject.toml: its `tool.pytest` table (None when absent;
    a marker when the text is not TOML, which pytest cannot read either)."""
    try:
        tool = tomllib.loads(text).get("tool")
    except tomllib.TOMLDecodeError:
        return "<not TOML>"
    return tool.get("pytest") if isinstance(tool, dict) else None


def hide_from_agent(sb: Sandbox, paths: list[str]) -> None:
    """Remove `paths` from an agent's sandbox (R2E's hidden tests): the grading sandbox starts
    fresh from the image and has them; the agent's never does."""
    if paths:
        sb.exec(["rm", "-rf", "--", *paths], timeout=60)
