"""POSIX sh programs swebox runs inside sandboxes.

Nothing is injected into images: each program is passed as the argument of `/bin/sh -c`, so
any image with /bin/sh works. They use only sh builtins plus `sleep`, `date` and `git`/`patch`
where the operation itself needs them.
"""

from __future__ import annotations

# Runs "$3" with a deadline of "$1" ticks of "$2" seconds, enforced inside the sandbox. The
# engine starts each exec as the leader of its own process group, so `kill 0` reaches the
# command and everything it forked (but not other execs, nor PID 1). A watcher in the same group
# polls once a tick whether the wrapper is still there (so it never outlives a command that
# finished in time, and no signal can race its set-up); at the deadline it sends TERM to the
# group and KILL one second later. It ignores TERM itself so that the KILL always follows. The
# wrapper traps TERM only to learn that the deadline passed; a trap (unlike an ignored signal)
# is reset in the command, which gets the default action. If this shell does not lead its
# group (an engine that does not make it so), no `kill 0` is sent and the host-side deadline
# is the only guard.
EXEC_WITH_TIMEOUT = r"""
n=$1; tick=$2; shift 2
to=
read -r st < /proc/self/stat 2>/dev/null; st=${st##*) }; set -- "$1" $st
if [ "$4" = "$$" ]; then
  me=$$
  (
    trap '' TERM
    i=0
    while [ "$i" -lt "$n" ]; do
      sleep "$tick"
      kill -0 "$me" 2>/dev/null || exit 0
      i=$((i + 1))
    done
    kill -TERM 0 2>/dev/null
    sleep 1
    kill -KILL 0 2>/dev/null
  ) </dev/null >/dev/null 2>&1 &
  trap 'to=1' TERM
fi
/bin/sh -c "$1"
rc=$?
[ -n "$to" ] && exit 124
exit $rc
"""


def watcher_ticks(timeout: float) -> tuple[int, float]:
    """(ticks, seconds per tick) for EXEC_WITH_TIMEOUT: fine-grained for short deadlines,
    at most two polls a second for long ones."""
    tick = 0.5 if timeout >= 5 else max(0.05, timeout / 10)
    return max(1, round(timeout / tick)), tick


# Kills every process in the process group "$1" except the group leader (a persistent shell),
# used to interrupt the command a session is running without ending the session.
KILL_GROUP_EXCEPT_LEADER = r"""
lead=$1
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$lead" ] && continue
  [ "$p" = "$$" ] && continue
  read -r line < "$d/stat" 2>/dev/null || continue
  rest=${line##*) }
  set -- $rest
  [ "$3" = "$lead" ] && kill -KILL "$p" 2>/dev/null
done
exit 0
"""

# PID 1 of every sandbox: the lease. It exits (and the engine removes the container) when the
# expiry time passes, whether or not the owner is alive. The expiry starts as "$1" (unix time)
# and can be extended by writing a later time to LEASE_FILE. Run it as `lease_argv(expiry)`.
LEASE_FILE = "/dev/shm/.swebox-lease"
# With bash in the image the loop runs in bash using builtins only: the time from printf's %(%s)T,
# the pause from `read -t` on a FIFO that never has data. Each round then forks nothing, so a
# fork bomb filling the pids limit cannot kill PID 1 (dash exits when it cannot fork), and
# `kill_processes` can bring the sandbox back. Without bash, the sh loop below.
LEASE_LOOP_BASH = r"""
exp=$1
trap "exit 0" TERM INT HUP
exec 3<>"$2"
while :; do
  if [ -r "$0" ]; then read -r e < "$0" 2>/dev/null && [ -n "$e" ] && exp=$e; fi
  printf -v now "%(%s)T" -1
  [ "$now" -ge "${exp%.*}" ] && exit 0
  read -r -t 2 -u 3 _
done
"""
LEASE_TICK = "/dev/shm/.swebox-tick"
LEASE_LOOP = r"""
exp=$1
trap 'exit 0' TERM INT HUP
if command -v bash >/dev/null 2>&1 && bash -c 'printf -v x "%(%s)T" -1' 2>/dev/null \
   && { [ -p "$2" ] || mkfifo "$2" 2>/dev/null; }; then
  exec bash -c "$3" "$0" "$1" "$2"
fi
while :; do
  if [ -r "$0" ]; then read -r e < "$0" 2>/dev/null && [ -n "$e" ] && exp=$e; fi
  now=$(date +%s)
  [ "$now" -ge "${exp%.*}" ] && exit 0
  sleep 2 & wait $!
done
"""


def lease_argv(expiry: str) -> list[str]:
    """The arguments of `sh -c` that run the lease loop until `expiry` (unix time)."""
    return [LEASE_LOOP, LEASE_FILE, expiry, LEASE_TICK, LEASE_LOOP_BASH]

# Applies the patch file "$1" in the current directory, trying methods in order; prints
# "SWEBOX_APPLIED <method>" on success. Every method is all-or-nothing: `git apply` is atomic,
# `patch` is dry-run first, and `git apply --3way` runs only on a clean tree, which is reset if
# it leaves conflicts, so a failed attempt never leaves a half-applied tree for the next one.
APPLY_PATCH = r"""
p=$1
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
  echo "== git apply"
  if git apply --verbose "$p" 2>&1; then echo "SWEBOX_APPLIED git apply"; exit 0; fi
  if [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "== git apply --3way"
    if git apply --verbose --3way "$p" 2>&1; then echo "SWEBOX_APPLIED git apply --3way"; exit 0; fi
    git reset -q --hard 2>/dev/null
  fi
fi
if command -v patch >/dev/null 2>&1; then
  echo "== patch --fuzz=5"
  if patch --batch --fuzz=5 -p1 --dry-run -i "$p" >/dev/null 2>&1; then
    if patch --batch --fuzz=5 -p1 -i "$p" 2>&1; then
      echo "SWEBOX_APPLIED patch --fuzz=5"; exit 0
    fi
  else
    patch --batch --fuzz=5 -p1 --dry-run -i "$p" 2>&1
  fi
fi
exit 1
"""

# Prints the diff of the working tree (new files included, binary files left out) against
# "$1" without touching the repository's own index: a throwaway index is used.
DIFF = r"""
base=$1
idx=$(mktemp 2>/dev/null || echo /tmp/.swebox-index.$$)
trap 'rm -f "$idx"' EXIT
gd=$(git rev-parse --git-dir) || exit 1
cp "$gd/index" "$idx" 2>/dev/null || rm -f "$idx"
export GIT_INDEX_FILE="$idx"
git add -A . >/dev/null 2>&1 || exit 1
tab=$(printf '\t')
binaries=$(git diff --cached --numstat "$base" | while IFS=$tab read -r a b f; do
  [ "$a" = - ] && [ "$b" = - ] && printf '%s\n' "$f"; done)
set --
if [ -n "$binaries" ]; then
  old_ifs=$IFS; IFS='
'
  for f in $binaries; do set -- "$@" ":(exclude,literal)$f"; done
  IFS=$old_ifs
fi
git -c core.quotepath=off diff --cached --no-color --no-ext-diff "$base" -- . "$@"
"""
