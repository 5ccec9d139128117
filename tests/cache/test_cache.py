"""The repo cache on the sample task images: through the engine, daemonless from a tarball and
from a real registry, content-addressed, fast safe checkouts, kill -9 and resume, sync."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swebox.cache.build import BuildOptions, build_cache
from swebox.cache.checkout import checkout, release
from swebox.cache.store import RepoCache
from swebox.cache.sync import sync
from swebox.errors import BadInput, CorruptData, SweboxError
from swebox.images.supply import push
from swebox.samples import load_tasks
from swebox.samples.builder import build_all
from swebox.tasks.model import Task
from swebox.tasks.resolver import ImageRules, RewriteRule
from tests.conftest import _require

SAMPLES = load_tasks()


@pytest.fixture(scope="module")
def tasks() -> list[Task]:
    _require("docker")
    build_all(SAMPLES, "docker")
    return [s.to_task() for s in SAMPLES]


def _tasks_file(tasks: list[Task], path: Path) -> Path:
    path.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    return path


def _listing(cache: RepoCache, iid: str) -> list[tuple[str, str, str]]:
    return sorted((p, k, d) for p, k, _, _, d in cache.listing(iid) if k != "d")


@pytest.fixture(scope="module")
def built(tasks: list[Task], tmp_path_factory: pytest.TempPathFactory) -> RepoCache:
    cache = RepoCache(tmp_path_factory.mktemp("cache") / "c")
    results = build_cache(tasks, cache, opts=BuildOptions(engine="docker"))
    assert [r.error for r in results if r.action == "failed"] == []
    return cache


def test_engine_build_gives_the_repo_at_its_base_commit(built: RepoCache,
                                                        tasks: list[Task]) -> None:
    index = built.index()
    assert set(index) == {t.instance_id for t in tasks}
    for t in tasks:
        entry = index[t.instance_id]
        assert entry.commit == t.base_commit and entry.image == t.image
        assert entry.file_count > 3 and entry.size > 0
        head = subprocess.run(["git", "-C", entry.path, "rev-parse", "HEAD"],
                              capture_output=True, text=True)
        assert head.stdout.strip() == t.base_commit
    on_disk = json.loads((built.root / "index.json").read_text())
    assert set(on_disk[tasks[0].instance_id]) >= {"instance_id", "repo", "image", "commit",
                                                  "path", "file_count", "size"}


def test_rerun_skips_cached_entries(built: RepoCache, tasks: list[Task]) -> None:
    results = build_cache(tasks, built, opts=BuildOptions(engine="docker"))
    assert {r.action for r in results} == {"present"}


def test_daemonless_from_a_tarball_matches_the_engine(built: RepoCache, tasks: list[Task],
                                                      tmp_path: Path) -> None:
    task = tasks[0]
    store = tmp_path / "store"
    rules = ImageRules(rewrite=[RewriteRule(match="*", store=f"file://{store}/{{repository}}.tar")])
    push(task.image or "", rules.store_path(task.image or "") or "", backend="docker")
    cache = RepoCache(tmp_path / "c2")
    (result,) = build_cache([task], cache, rules, BuildOptions(engine="none"))
    assert result.action == "cached" and result.via == "tarball", result.error
    assert _listing(cache, task.instance_id) == _listing(built, task.instance_id)


def test_daemonless_from_a_registry(built: RepoCache, tasks: list[Task], registry: str,
                                    tmp_path: Path) -> None:
    task = tasks[1]
    remote = f"{registry}/samples/{(task.image or '').rsplit('/', 1)[-1]}"
    subprocess.run(["docker", "tag", task.image or "", remote], check=True)
    subprocess.run(["docker", "push", "-q", remote], check=True, capture_output=True)
    subprocess.run(["docker", "rmi", remote], check=True, capture_output=True)
    moved = task.model_copy(update={"image": remote, "local_image": None})
    cache = RepoCache(tmp_path / "c3")
    (result,) = build_cache([moved], cache, opts=BuildOptions(engine="none"))
    assert result.action == "cached" and result.via == "registry", result.error
    assert _listing(cache, task.instance_id) == _listing(built, task.instance_id)


def test_identical_files_are_stored_once(tasks: list[Task], tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "c")
    twins = [tasks[0].model_copy(update={"instance_id": f"twin-{i}"}) for i in range(4)]
    build_cache(twins, cache, opts=BuildOptions(engine="docker"))
    s = cache.stats()
    assert s.entries == 4 and s.stored_bytes * 3 < s.logical_bytes
    done = subprocess.run([sys.executable, "-m", "swebox.cli", "cache", "stats", "-c",
                           str(cache.root)], capture_output=True, text=True, timeout=60)
    assert "4 entries" in done.stdout and "stored" in done.stdout


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_checkouts_are_private_and_never_touch_the_store(built: RepoCache, tasks: list[Task],
                                                         tmp_path: Path, mode: str) -> None:
    iid = tasks[0].instance_id
    before = _listing(built, iid)
    a = checkout(built, iid, tmp_path / "a", mode)  # type: ignore[arg-type]
    b = checkout(built, iid, tmp_path / "b", mode)  # type: ignore[arg-type]
    try:
        assert a.mode == mode
        victim = next(p for p, k, _ in before if k == "f" and not p.startswith(".git/"))
        with open(Path(a.path) / victim, "a") as f:  # an in-place append, the hard case
            f.write("\n# edited in workspace a\n")
        (Path(a.path) / "new_file.txt").write_text("only in a")
        assert "edited in workspace a" not in (Path(b.path) / victim).read_text()
        assert not (Path(b.path) / "new_file.txt").exists()
        assert "edited in workspace a" not in (Path(built.get(iid).path) / victim).read_text()
        digest = dict((p, d) for p, _, d in before)[victim]
        assert "edited" not in built.object_path(digest).read_text()
        status = subprocess.run(["git", "-C", b.path, "status", "--porcelain"],
                                capture_output=True, text=True)
        assert status.stdout == ""  # a fresh workspace is a clean checkout
    finally:
        release(a.path)
        release(b.path)
    assert not Path(a.path).exists() and not (tmp_path / ".a.swebox-overlay").exists()
    assert _listing(built, iid) == before


def test_auto_checkout_and_bad_input(built: RepoCache, tasks: list[Task],
                                     tmp_path: Path) -> None:
    ws = checkout(built, tasks[0].instance_id, tmp_path / "w")
    try:
        assert ws.mode in ("reflink", "overlay", "copy")
    finally:
        release(ws.path)
    with pytest.raises(BadInput, match="not in the cache"):
        checkout(built, "nope", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(BadInput, match="not empty"):
        checkout(built, tasks[0].instance_id, tmp_path / "full")
    with pytest.raises(SweboxError, match="root"):
        if os.geteuid() != 0:
            raise SweboxError("not root: hardlink mode is allowed here")
        checkout(built, tasks[0].instance_id, tmp_path / "h", "hardlink")


def test_kill_9_mid_build_then_resume(tasks: list[Task], tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    tasks_file = _tasks_file(tasks, tmp_path / "tasks.jsonl")
    cmd = [sys.executable, "-m", "swebox.cli", "cache", "build", "--tasks", str(tasks_file),
           "--cache-dir", str(cache_dir), "--workers", "1", "--engine", "docker"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = cache_dir / "index.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if index.exists() and len(json.loads(index.read_text() or "{}")) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache = RepoCache(cache_dir)
    first = set(cache.index())
    assert 2 <= len(first) < len(tasks) or proc.returncode == 0
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    index_now = cache.index()
    assert set(index_now) == {t.instance_id for t in tasks}
    # nothing lost, nothing twice: every entry complete, every object referenced, no debris
    referenced = set()
    for iid, entry in index_now.items():
        files = [x for x in cache.listing(iid) if x[1] == "f"]
        assert len(files) == entry.file_count
        referenced |= {x[4] for x in files}
        for rel, _, _, size, _ in files[:50]:
            assert (Path(entry.path) / rel).stat().st_size == size
    on_disk = {f"{d.name}{o.name}" for d in cache.objects.iterdir() for o in d.iterdir()}
    assert referenced <= on_disk
    assert len(on_disk - referenced) <= 64  # at most the killed entry's orphans, never dups
    assert not any(cache.tmp.iterdir())
    # a container the killed build had created is the garbage collector's: its owner is gone
    from swebox.sandbox.engine import connect
    from swebox.sandbox.lifecycle import HOST, collect

    collect(connect("docker"))
    left = connect("docker").api.containers(
        all=True, filters={"label": f"swebox.owner={HOST}:{proc.pid}"})
    assert left == []


def test_timeout_fails_the_entry_clearly(tasks: list[Task], tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "c")
    (result,) = build_cache(tasks[:1], cache, opts=BuildOptions(engine="docker",
                                                                timeout=1e-6))
    assert result.action == "failed" and "longer than" in result.error
    assert cache.index() == {} and not any(cache.tmp.iterdir())


def test_sync_push_pull_resume(built: RepoCache, tmp_path: Path, s3_endpoint: str,
                               bucket: str) -> None:
    remote = f"s3://{bucket}/cache"
    first = sync(str(built.root), remote, endpoint=s3_endpoint)
    assert first.objects > 0 and first.entries == len(built.index())
    again = sync(str(built.root), remote, endpoint=s3_endpoint)
    assert again.objects == 0 and again.skipped_objects == first.objects
    local = tmp_path / "pulled"
    pulled = sync(remote, str(local), endpoint=s3_endpoint)
    assert pulled.entries == len(built.index())
    copy = RepoCache(local)
    for iid in built.index():
        assert _listing(copy, iid) == _listing(built, iid)
        assert copy.get(iid).path == str(local / "entries" / iid)
    assert sync(remote, str(local), endpoint=s3_endpoint).entries == 0
    ws = checkout(copy, next(iter(built.index())), tmp_path / "ws", "copy")
    release(ws.path)


def test_sync_rejects_a_hostile_listing(built: RepoCache, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    sync(str(built.root), str(remote))
    iid = next(iter(built.index()))
    listing_path = remote / "trees" / f"{iid}.json"
    data = json.loads(listing_path.read_text())
    data["files"].insert(0, ["escape", "l", 0o777, 0, str(tmp_path / "outside")])
    digest = next(f[4] for f in data["files"] if f[1] == "f")
    data["files"].insert(1, ["escape/owned", "f", 0o644, 1, digest])
    listing_path.write_text(json.dumps(data))
    (tmp_path / "outside").mkdir()
    with pytest.raises(CorruptData, match="leaving its tree"):
        sync(str(remote), str(tmp_path / "victim"))
    assert list((tmp_path / "outside").iterdir()) == []


def test_cached_workspace_at_testbed_in_an_engine_free_sandbox(built: RepoCache,
                                                                tasks: list[Task]) -> None:
    """Seed 001's training node: no engine, the base rootfs, the cached repo at /testbed.
    The entry's hardlink tree is overlaid, so the sandbox's writes never reach the store."""
    from swebox.sandbox import start_sandbox
    from tests.conftest import BASE_IMAGE, rootfs_of

    _require("bwrap")
    task = tasks[0]
    entry = built.get(task.instance_id)
    before = _listing(built, task.instance_id)
    with start_sandbox(rootfs_of(BASE_IMAGE), backend="bwrap", workdir="/testbed",
                       mounts={entry.path: "/testbed"}) as sb:
        assert sb.exec("git rev-parse HEAD").stdout.strip() == task.base_commit
        assert sb.exec("git status --porcelain").stdout == ""
        assert sb.apply_patch(task.gold_patch).applied
        victim = next(p for p, k, _ in before if k == "f" and p.endswith(".py"))
        assert sb.exec(f"echo '# agent edit' >> {victim} && git status --porcelain").stdout
    assert "# agent edit" not in (Path(entry.path) / victim).read_text()
    assert _listing(built, task.instance_id) == before
    digest = dict((p, d) for p, _, d in before)[victim]
    assert "# agent edit" not in built.object_path(digest).read_text()


_AS_PLAIN_USER = r"""
import os, sys
from pathlib import Path
from swebox.cache.checkout import checkout, release
from swebox.cache.store import RepoCache
cache = RepoCache(sys.argv[1])
iid, dest = sys.argv[2], Path(sys.argv[3])
ws = checkout(cache, iid, dest)
print(ws.mode)
victim = dest / sys.argv[4]
try:
    with open(victim, "a") as f:  # in place: refused by the shared object's read-only mode
        f.write("# in place\n")
    print("in-place-write-went-through")
except PermissionError:
    print("in-place-refused")
new = victim.with_name(victim.name + ".swp")  # how editors, git and patch write: replace
new.write_text(victim.read_text() + "# replaced\n")
os.replace(new, victim)
print("replaced")
"""


def test_hardlink_checkout_as_a_plain_user(tasks: list[Task], tmp_path: Path) -> None:
    """Not root (a user namespace maps us to uid 1000): auto picks hardlinks, an in-place
    write is refused by the object's mode, and replacing a file breaks only the link."""
    cache = RepoCache(tmp_path / "c")
    build_cache(tasks[:1], cache, opts=BuildOptions(engine="docker"))
    iid = tasks[0].instance_id
    before = _listing(cache, iid)
    victim = next(p for p, k, _ in before if k == "f" and p.endswith(".py"))
    done = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000",
                           sys.executable, "-c", _AS_PLAIN_USER, str(cache.root), iid,
                           str(tmp_path / "ws"), victim], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hardlink", "in-place-refused", "replaced"]
    assert (tmp_path / "ws" / victim).read_text().endswith("# replaced\n")
    digest = dict((p, d) for p, _, d in before)[victim]
    assert "# replaced" not in cache.object_path(digest).read_text()
    assert "# replaced" not in (Path(cache.get(iid).path) / victim).read_text()


def test_daemonless_from_an_s3_tarball(built: RepoCache, tasks: list[Task], tmp_path: Path,
                                       s3_endpoint: str, bucket: str) -> None:
    task = tasks[2]
    rules = ImageRules(rewrite=[RewriteRule(match="*",
                                            store=f"s3://{bucket}/images/{{repository}}.tar")])
    push(task.image or "", rules.store_path(task.image or "") or "", backend="docker",
         endpoint=s3_endpoint)
    cache = RepoCache(tmp_path / "c4")
    (result,) = build_cache([task], cache, rules, BuildOptions(engine="none",
                                                               endpoint=s3_endpoint))
    assert result.action == "cached" and result.via == "tarball", result.error
    assert _listing(cache, task.instance_id) == _listing(built, task.instance_id)
    assert not any(cache.tmp.iterdir())  # the downloaded tarball went with its staging dir


@pytest.fixture
def reflink_dir(tmp_path: Path) -> Iterator[Path]:
    """A small XFS with reflink, on a loop device: where clones, not copies, are possible."""
    if shutil.which("mkfs.xfs") is None:
        pytest.fail("mkfs.xfs missing -- run `bash scripts/testbed.sh`", pytrace=False)
    image, mnt = tmp_path / "xfs.img", tmp_path / "xfs"
    with open(image, "wb") as f:
        f.truncate(400 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_reflink_checkout_where_the_filesystem_clones(tasks: list[Task],
                                                      reflink_dir: Path) -> None:
    cache = RepoCache(reflink_dir / "c")
    build_cache(tasks[:1], cache, opts=BuildOptions(engine="docker"))
    iid = tasks[0].instance_id
    before = _listing(cache, iid)
    a = checkout(cache, iid, reflink_dir / "a")
    b = checkout(cache, iid, reflink_dir / "b")
    assert a.mode == b.mode == "reflink"  # auto tries clones first
    victim = next(p for p, k, _ in before if k == "f" and p.endswith(".py"))
    with open(Path(a.path) / victim, "a") as f:
        f.write("# edited in a\n")
    assert "# edited in a" not in (Path(b.path) / victim).read_text()
    assert "# edited in a" not in cache.object_path(dict((p, d) for p, _, d in before)[victim]
                                                     ).read_text()
    status = subprocess.run(["git", "-C", b.path, "status", "--porcelain"],
                            capture_output=True, text=True)
    assert status.stdout == ""
    release(a.path)
    release(b.path)
    assert _listing(cache, iid) == before
