"""Unified-diff helpers for task conversion."""

from __future__ import annotations

import re

_HUNK = re.compile(r"^@@ -(\d+(?:,\d+)?) \+(\d+(?:,\d+)?) @@(.*)$")


def reverse_patch(patch: str) -> str:
    """The inverse of a git-style unified diff (what `git apply -R` would apply).

    SWE-smith stores the bug-introducing diff; the fix is its reverse. Within each file the old
    and new sides swap: `---`/`+++` paths, hunk ranges, `-`/`+` lines, file creation/deletion
    and mode changes. Binary hunks cannot be reversed textually and are refused.
    """
    out: list[str] = []
    lines = patch.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("GIT binary patch"):
            raise ValueError("cannot reverse a binary patch")
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = line[4:], lines[i + 1][4:]
            out.append("--- " + _swap_prefix(new, "b/", "a/"))
            out.append("+++ " + _swap_prefix(old, "a/", "b/"))
            i += 2
            continue
        m = _HUNK.match(line.rstrip("\r\n"))
        if m:
            nl = line[len(line.rstrip("\r\n")):]
            out.append(f"@@ -{m.group(2)} +{m.group(1)} @@{m.group(3)}{nl}")
            i += 1
            # swap the body, keeping each run of removals before its additions
            minus: list[str] = []
            plus: list[str] = []
            while i < len(lines) and lines[i][:1] in ("-", "+", " ", "\\") and not (
                    lines[i].startswith("--- ") and i + 1 < len(lines)
                    and lines[i + 1].startswith("+++ ")):
                body = lines[i]
                if body.startswith("-"):
                    plus.append("+" + body[1:])
                elif body.startswith("+"):
                    minus.append("-" + body[1:])
                else:
                    out.extend(minus + plus)
                    minus, plus = [], []
                    out.append(body)
                i += 1
            out.extend(minus + plus)
            continue
        if line.startswith("diff --git "):
            parts = line.rstrip("\n").split(" ")
            if len(parts) == 4:
                line = (f"diff --git {_swap_prefix(parts[3], 'b/', 'a/')} "
                        f"{_swap_prefix(parts[2], 'a/', 'b/')}\n")
        elif line.startswith("new file mode"):
            line = "deleted" + line[3:]
        elif line.startswith("deleted file mode"):
            line = "new" + line[7:]
        elif line.startswith("old mode"):
            line = "new" + line[3:]
        elif line.startswith("new mode"):
            line = "old" + line[3:]
        elif line.startswith("index "):
            m2 = re.match(r"index ([0-9a-f]+)\.\.([0-9a-f]+)(.*)", line.rstrip("\n"))
            if m2:
                line = f"index {m2.group(2)}..{m2.group(1)}{m2.group(3)}\n"
        out.append(line)
        i += 1
    return "".join(out)


def _swap_prefix(path: str, old: str, new: str) -> str:
    return new + path[len(old):] if path.startswith(old) else path
