"""Files in and out of sandboxes, patches with fallbacks, diffs against the base commit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swebox.errors import PatchFailed, SandboxError
from swebox.sandbox import Sandbox

REPO_SETUP = r"""
set -e
mkdir -p /work && cd /work
git init -q . && git config user.email t@t && git config user.name t
seq 1 30 > nums.txt
printf 'keep\n' > other.txt
git add -A && git commit -qm base
"""


def test_write_and_read_bytes_and_text(sandbox: Sandbox) -> None:
    blob = bytes(range(256)) * 50
    sandbox.write_file("/data/deep/nested/blob.bin", blob)
    assert sandbox.read_file("/data/deep/nested/blob.bin") == blob
    sandbox.write_file("notes.txt", "héllo\n")  # relative: under the workdir
    assert sandbox.read_text("/root/notes.txt") == "héllo\n"
    sandbox.write_file("/tmp/run.sh", "#!/bin/sh\necho ran\n", mode=0o755)
    assert sandbox.exec("/tmp/run.sh").stdout == "ran\n"


def test_read_missing_file_is_a_clear_error(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="no such file"):
        sandbox.read_file("/nope/missing.txt")


def test_upload_and_download_directories(sandbox: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg" / "sub").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("A = 1\n")
    (src / "pkg" / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (src / "run.sh").write_text("echo hi\n")
    (src / "run.sh").chmod(0o755)
    os.symlink("pkg/a.py", src / "link.py")
    sandbox.upload(src, "/up/tree")
    assert sandbox.exec("cat /up/tree/link.py; test -x /up/tree/run.sh && echo x").stdout \
        == "A = 1\nx\n"
    sandbox.exec("echo changed > /up/tree/pkg/a.py")
    out = tmp_path / "out"
    sandbox.download("/up/tree", out)
    assert (out / "pkg" / "a.py").read_text() == "changed\n"
    assert (out / "pkg" / "sub" / "b.bin").read_bytes() == \
        (src / "pkg" / "sub" / "b.bin").read_bytes()
    assert os.readlink(out / "link.py") == "pkg/a.py"
    assert os.access(out / "run.sh", os.X_OK)
    single = tmp_path / "single.py"
    sandbox.download("/up/tree/pkg/a.py", single)
    assert single.read_text() == "changed\n"


def test_download_refuses_links_out_of_the_destination(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.exec("mkdir -p /evil && ln -s /etc/passwd /evil/pw && ln -s ../../x /evil/up")
    with pytest.raises(SandboxError, match="outside"):
        sandbox.download("/evil", tmp_path / "evil")
    assert not (tmp_path / "x").exists()


def _setup_repo(sb: Sandbox) -> None:
    assert sb.exec(REPO_SETUP, timeout=30).ok


def test_apply_patch_git_apply(sandbox: Sandbox) -> None:
    _setup_repo(sandbox)
    patch = sandbox.exec("cd /work && sed -i 's/^5$/five/' nums.txt && git diff && "
                         "git checkout -q nums.txt").stdout
    res = sandbox.apply_patch(patch, cwd="/work")
    assert res.applied and res.method == "git apply"
    assert sandbox.exec("sed -n 5p /work/nums.txt").stdout == "five\n"


def test_apply_patch_falls_back_to_fuzz(sandbox: Sandbox) -> None:
    _setup_repo(sandbox)
    # The patch's context says line 4 is "4" but the tree has "four": git apply (and --3way,
    # whose pre-image blob is unknown) refuse; patch --fuzz accepts.
    patch = ("diff --git a/nums.txt b/nums.txt\n--- a/nums.txt\n+++ b/nums.txt\n"
             "@@ -3,5 +3,5 @@\n 3\n 4\n-5\n+five\n 6\n 7\n")
    sandbox.exec("cd /work && sed -i 's/^4$/four/; s/^3$/three/' nums.txt && git commit -qam c")
    res = sandbox.apply_patch(patch, cwd="/work")
    assert res.applied and res.method == "patch --fuzz=5", res.output
    assert res.attempts[0] == "git apply"
    assert sandbox.exec("sed -n 5p /work/nums.txt").stdout == "five\n"


def test_failed_patch_leaves_tree_untouched(sandbox: Sandbox) -> None:
    _setup_repo(sandbox)
    patch = ("diff --git a/nums.txt b/nums.txt\n--- a/nums.txt\n+++ b/nums.txt\n"
             "@@ -1,3 +1,3 @@\n nope\n-nothing\n+here\n matches\n"
             "diff --git a/other.txt b/other.txt\n--- a/other.txt\n+++ b/other.txt\n"
             "@@ -1 +1 @@\n-keep\n+changed\n")
    res = sandbox.apply_patch(patch, cwd="/work")
    assert not res.applied and res.method is None
    assert sandbox.exec("cd /work && git status --porcelain").stdout == ""
    with pytest.raises(PatchFailed):
        sandbox.apply_patch(patch, cwd="/work", check=True)
    assert not sandbox.apply_patch("", cwd="/work").applied


def test_diff_includes_new_files_and_leaves_binaries_and_index(sandbox: Sandbox) -> None:
    _setup_repo(sandbox)
    sandbox.exec("cd /work && sed -i 's/^7$/seven/' nums.txt && echo new > added.txt && "
                 "printf '\\000\\001\\002' > blob.bin && git add blob.bin")
    diff = sandbox.diff(cwd="/work")
    assert "+seven" in diff and "added.txt" in diff and "+new" in diff
    assert "blob.bin" not in diff
    # the repository's own index is as it was: only blob.bin staged
    staged = sandbox.exec("cd /work && git diff --cached --name-only").stdout
    assert staged == "blob.bin\n"
    # the diff applies cleanly on a fresh copy of the base commit
    sandbox.exec("cd / && rm -rf /clone && git clone -q /work /clone")
    assert sandbox.apply_patch(diff, cwd="/clone").applied
