"""Search the repository: text in files (grep) or files by name (find). Hidden directories
(.git among them) are skipped, as every scaffold's search does."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from swebox.agents.tools.base import ToolContext, ToolError


@dataclass
class SearchOutcome:
    term: str
    path: str
    is_file: bool = False
    # text search in a directory: (file, matches); in a file: (line number, line); by name: paths
    files: list[tuple[str, int]] = field(default_factory=list)
    lines: list[tuple[int, str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    total: int = 0


def search_text(ctx: ToolContext, term: str | None, path: str | None,
                include: str | None = None) -> SearchOutcome:
    """Occurrences of `term` (plain text) under `path`; `include` limits a directory search
    to file names matching a glob (R2E-Gym searches *.py only)."""
    if not term:
        raise ToolError("No search term given: pass `search_term`.")
    where = path or ctx.workdir
    if not where.startswith("/"):
        where = f"{ctx.workdir.rstrip('/')}/{where}"
    where = ctx.quiet(f"realpath -m {shlex.quote(where)}").output.strip() or where
    q, t = shlex.quote(where), shlex.quote(term)
    kind = ctx.quiet(f"[ -d {q} ] && echo dir || {{ [ -e {q} ] && echo file || echo missing; }}")
    k = kind.output.strip()
    if k == "missing":
        raise ToolError(f"Directory or file '{where}' not found.")
    out = SearchOutcome(term=term, path=where, is_file=k == "file")
    if out.is_file:
        res = ctx.quiet(f"grep -n -F -e {t} -- {q}")
        for line in res.output.splitlines():
            num, _, text = line.partition(":")
            if num.isdigit():
                out.lines.append((int(num), text))
        out.total = len(out.lines)
        return out
    inc = f" --include={shlex.quote(include)}" if include else ""
    res = ctx.quiet(f"cd {q} && grep -r -c -I -F --exclude-dir='.[!.]*'{inc} -e {t} . 2>/dev/null"
                    " | grep -v ':0$'")
    for line in res.output.splitlines():
        name, _, count = line.rpartition(":")
        if count.isdigit():
            out.files.append((name, int(count)))
    out.files.sort()
    out.total = sum(c for _, c in out.files)
    return out


def find_files(ctx: ToolContext, pattern: str | None, path: str | None) -> SearchOutcome:
    if not pattern:
        raise ToolError("No file name pattern given.")
    where = path or ctx.workdir
    q = shlex.quote(where)
    res = ctx.quiet(f"find {q} -not -path '*/.*' -name {shlex.quote(pattern)} -type f | sort")
    if res.exit_code != 0 and not res.output.strip():
        raise ToolError(f"Directory '{where}' not found.")
    out = SearchOutcome(term=pattern, path=where)
    out.names = [ln for ln in res.output.splitlines() if ln.strip()]
    out.total = len(out.names)
    return out
