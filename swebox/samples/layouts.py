"""The sample tasks rebuilt in each dataset family's real image layout, with a row in that
family's own dataset format, so grading is tested end to end the way each family runs:

- swebench / swegym: /testbed, conda env `testbed` under /opt/miniconda3 (a stand-in: conda
  itself cannot be installed offline; `conda activate testbed` enters a real venv there), the
  row in SWE-bench's (JSON-string lists) or SWE-Gym's (lists) shape, expected tests from the
  test patch's files as the datasets list them;
- swesmith: /testbed on the clean commit, the task a branch named by its instance id holding
  the bug commit and a commit that removes the failing tests, as SWE-smith builds them;
- r2e: /testbed with its `.venv`, `/testbed/run_tests.sh` running `r2e_tests`, the hidden
  tests in /r2e_tests, the expected map made by running the gold patch (as R2E made it);
- multiswebench: the repository at /home/<repo>, /home/{fix,test}.patch and the run scripts
  `run.sh`, `test-run.sh`, `fix-run.sh` (set -e), the row's stage results made by running them.

Images are tagged with each family's naming convention and rebuilt only when stale.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

from swebox.grading.parsers import parse_log
from swebox.samples import SampleTask
from swebox.samples.builder import GIT_ENV, build, build_context
from swebox.sandbox import start_sandbox
from swebox.sandbox.engine import connect
from swebox.tasks.io import Row
from swebox.tasks.model import Task
from swebox.tasks.resolver import ImageRules

FAMILIES = ("swebench", "swegym", "swesmith", "r2e", "multiswebench")
_VERSION = "1"  # bump when a layout changes
_LABEL = "swebox.layout.digest"
_CONDA = (  # a stand-in miniconda: `conda activate NAME` enters the venv envs/NAME
    "RUN python3 -m venv --without-pip --system-site-packages /opt/miniconda3/envs/testbed \\\n"
    " && mkdir -p /opt/miniconda3/bin \\\n"
    " && printf '%s\\n' 'conda() { [ \"$1\" = activate ] && . \"/opt/miniconda3/envs/$2/bin/"
    "activate\"; }' > /opt/miniconda3/bin/activate\n")


def _git(cmd: str) -> str:
    env = " ".join(f"{k}='{v}'" for k, v in GIT_ENV.items())
    return f"{env} git -c commit.gpgsign=false {cmd}"


def _test_files(sample: SampleTask) -> list[str]:
    from swebox.grading.grader import patch_paths

    return patch_paths(sample.test_patch)


def _listed(sample: SampleTask) -> tuple[list[str], list[str]]:
    """F2P and P2P restricted to the test patch's files, as SWE-bench-style lists are made."""
    files = set(_test_files(sample))
    keep = [t for t in sample.pass_to_pass if t.split("::", 1)[0] in files]
    return list(sample.fail_to_pass), keep


def image_name(sample: SampleTask, family: str) -> str:
    """The image's name in the family's convention (the resolver's, so rows find it)."""
    owner, name = sample.repo.split("/")
    rules = ImageRules()
    return {
        "swebench": lambda: rules.swebench(sample.instance_id),
        "swegym": lambda: rules.swegym(sample.instance_id),
        "swesmith": lambda: rules.swesmith(f"swesmith/{owner}__{name}."
                                           f"{sample.base_commit[:8]}"),
        "r2e": lambda: f"namanjain12/{name}_final:{sample.base_commit}".lower(),
        "multiswebench": lambda: rules.multiswebench(owner, name, _number(sample)),
    }[family]()


def _number(sample: SampleTask) -> int:
    return int(sample.instance_id.rsplit("-", 1)[-1])


def _dockerfile(sample: SampleTask, family: str) -> str:
    name = sample.repo.split("/")[1]
    files = " ".join(_test_files(sample))
    lines = [f"FROM {sample.image}"]
    if family in ("swebench", "swegym", "swesmith"):
        lines.append(_CONDA)
    if family == "swesmith":  # main: the clean commit; the branch: bug, then tests removed
        lines.append(
            "COPY gold.patch test.patch /tmp/\n"
            "RUN git apply /tmp/gold.patch /tmp/test.patch && git add -A"
            f" && {_git('commit -qm clean')}"
            f" && git checkout -qb {sample.instance_id} && git apply -R /tmp/gold.patch"
            f" && git add -A && {_git('commit -qm bug')} && git rm -q {files}"
            f" && {_git('commit -qm remove-tests')} && git checkout -q main"
            " && rm /tmp/gold.patch /tmp/test.patch\n")
    if family == "r2e":
        lines.append(
            "COPY test.patch /tmp/\n"
            "RUN python3 -m venv --without-pip --system-site-packages /testbed/.venv"
            " && mkdir /r2e_tests && git apply /tmp/test.patch"
            f" && for f in {files}; do cp \"$f\" /r2e_tests/; done && git checkout -q -- ."
            " && git clean -fdq -e .venv && rm /tmp/test.patch"
            " && printf '%s\\n' '.venv/bin/python -W ignore -m pytest -rA r2e_tests'"
            " > /testbed/run_tests.sh && printf '.venv\\nrun_tests.sh\\n' >> .git/info/exclude\n")
    if family == "multiswebench":
        cmd = f"python3 -m pytest -rA -p no:cacheprovider {files}"
        scripts = {"run.sh": "", "test-run.sh": "git apply --whitespace=nowarn /home/test.patch",
                   "fix-run.sh": "git apply --whitespace=nowarn /home/test.patch "
                                 "/home/fix.patch"}
        lines.append("COPY gold.patch /home/fix.patch\nCOPY test.patch /home/test.patch\n"
                     f"RUN mv /testbed /home/{name}")
        for script, apply in scripts.items():
            body = "\\n".join(["#!/bin/bash", "set -e", f"cd /home/{name}",
                               *([apply] if apply else []), cmd])
            lines.append(f"RUN printf '{body}\\n' > /home/{script}")
        lines.append(f"WORKDIR /home/{name}")
    return "\n".join(lines) + "\n"


def build_layout(sample: SampleTask, family: str) -> str:
    """Build (if stale) the sample's image in `family`'s layout; returns its name."""
    build(sample)
    api = connect("docker").api
    tag = image_name(sample, family)
    dockerfile = _dockerfile(sample, family)
    base_id = api.inspect_image(sample.image)["Id"]
    digest = hashlib.sha256(f"{_VERSION}\0{base_id}\0{dockerfile}".encode()).hexdigest()[:16]
    try:
        if (api.inspect_image(tag)["Config"].get("Labels") or {}).get(_LABEL) == digest:
            return tag
    except Exception:  # absent: build it
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", f"{dockerfile}LABEL {_LABEL}={digest}\n".encode()),
                           ("gold.patch", sample.gold_patch.encode()),
                           ("test.patch", sample.test_patch.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    build_context(api, tag, buf.getvalue())
    return tag


def row(sample: SampleTask, family: str) -> dict[str, Any]:
    """The sample as one row of `family`'s dataset (build the image first)."""
    f2p, p2p = _listed(sample)
    owner, name = sample.repo.split("/")
    if family in ("swebench", "swegym"):
        out: dict[str, Any] = {
            "repo": sample.repo, "instance_id": sample.instance_id,
            "base_commit": sample.base_commit, "patch": sample.gold_patch,
            "test_patch": sample.test_patch, "problem_statement": sample.problem_statement,
            "hints_text": "", "created_at": sample.meta.get("created_at"), "version": "0.0"}
        if family == "swebench":
            return out | {"FAIL_TO_PASS": json.dumps(f2p), "PASS_TO_PASS": json.dumps(p2p),
                          "environment_setup_commit": sample.base_commit}
        return out | {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p}
    if family == "swesmith":
        clean = _git_head(image_name(sample, family), "/testbed", "main")
        bug = _reverse(sample.gold_patch)
        mirror = f"{owner}__{name}.{sample.base_commit[:8]}"  # the name the image was built as
        return {"instance_id": sample.instance_id, "repo": f"swesmith/{mirror}", "patch": bug,
                "FAIL_TO_PASS": f2p, "PASS_TO_PASS": list(sample.pass_to_pass),
                "base_commit": clean, "image_name": f"swesmith.x86_64.{mirror}",
                "problem_statement": sample.problem_statement}
    if family == "r2e":
        image = image_name(sample, family)
        with start_sandbox(image) as sb:
            sb.apply_patch(sample.gold_patch, check=True)
            sb.exec(["ln", "-s", "/r2e_tests", "/testbed/r2e_tests"])
            out_text = sb.exec(["bash", "run_tests.sh"], timeout=300).output
        from swebox.grading.rules import r2e_key

        expected = {r2e_key(k): v for k, v in parse_log("pytest", out_text).items()}
        return {"repo_name": name, "docker_image": image, "commit_hash": sample.base_commit,
                "problem_statement": sample.problem_statement,
                "expected_output_json": json.dumps(expected)}
    return _msb_row(sample, f2p, p2p)


def _msb_row(sample: SampleTask, f2p: list[str], p2p: list[str]) -> dict[str, Any]:
    owner, name = sample.repo.split("/")
    stages: dict[str, dict[str, str]] = {}
    with start_sandbox(image_name(sample, "multiswebench"), workdir=f"/home/{name}") as sb:
        for stage in ("run", "test", "fix"):
            script = {"run": "run.sh", "test": "test-run.sh", "fix": "fix-run.sh"}[stage]
            sb.exec(["git", "checkout", "-q", "--", "."], cwd=f"/home/{name}")
            sb.exec(["git", "clean", "-fdq"], cwd=f"/home/{name}")
            stages[stage] = parse_log("pytest", sb.exec(["bash", f"/home/{script}"],
                                                        timeout=300).output)

    def word(status: str | None) -> str:
        return {"PASSED": "PASS", "XFAIL": "PASS", "FAILED": "FAIL", "ERROR": "FAIL",
                "SKIPPED": "SKIP"}.get(status or "", "NONE")

    def result(m: dict[str, str]) -> dict[str, Any]:
        groups = {w: sorted(t for t, s in m.items() if word(s) == w)
                  for w in ("PASS", "FAIL", "SKIP")}
        return {"passed_count": len(groups["PASS"]), "failed_count": len(groups["FAIL"]),
                "skipped_count": len(groups["SKIP"]), "passed_tests": groups["PASS"],
                "failed_tests": groups["FAIL"], "skipped_tests": groups["SKIP"]}

    maps: dict[str, dict[str, dict[str, str]]] = {k: {} for k in ("p2p", "f2p", "s2p", "n2p")}
    for t in sorted(set().union(*stages.values())):
        trio = {k: word(v.get(t)) for k, v in stages.items()}
        if trio["fix"] == "PASS":
            key = {"PASS": "p2p", "FAIL": "f2p", "SKIP": "s2p", "NONE": "n2p"}[trio["test"]]
            maps[key][t] = trio
    return {"org": owner, "repo": name, "number": _number(sample),
            "state": "closed", "title": sample.problem_statement.split("\n", 1)[0], "body": "",
            "base": {"label": f"{owner}:main", "ref": "main", "sha": sample.base_commit},
            "resolved_issues": [{"number": 1, "title": sample.problem_statement.split("\n")[0],
                                 "body": sample.problem_statement}],
            "fix_patch": sample.gold_patch, "test_patch": sample.test_patch,
            "fixed_tests": maps["f2p"], "p2p_tests": maps["p2p"], "f2p_tests": maps["f2p"],
            "s2p_tests": maps["s2p"], "n2p_tests": maps["n2p"],
            "run_result": result(stages["run"]), "test_patch_result": result(stages["test"]),
            "fix_patch_result": result(stages["fix"]),
            "instance_id": f"{owner}__{name}-{sample.instance_id.rsplit('-', 1)[-1]}"}


def _git_head(image: str, workdir: str, ref: str) -> str:
    with start_sandbox(image, workdir=workdir) as sb:
        return sb.exec(["git", "rev-parse", ref]).stdout.strip()


def _reverse(patch: str) -> str:
    from swebox.tasks.patches import reverse_patch

    return reverse_patch(patch)


def as_task(sample: SampleTask, family: str) -> Task:
    """The family's row read back through its own reader (the real path a user takes)."""
    from swebox.tasks.readers import ReadOptions, convert_rows

    build_layout(sample, family)
    fmt = family  # each family's reader has the family's name
    (item,) = list(convert_rows([Row(row(sample, family), f"{family}:{sample.name}")], fmt,
                                ReadOptions()))
    if not isinstance(item, Task):
        raise ValueError(f"{family} row of {sample.name} was rejected: {item}")
    return item
