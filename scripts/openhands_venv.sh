#!/usr/bin/env bash
# Builds the venv the OpenHands V0 compatibility tests run OpenHands' own RemoteRuntime client in
# (tests/server/test_openhands_v0.py): openhands-ai 1.6.0 on Python 3.12 (it requires >=3.12).
# `python-dateutil<3` is pinned because without it pip backtracks for more than ten minutes.
# swebox is not installed there: the client only talks HTTP to a swebox server.
# Idempotent: a no-op (a stamp file and one `test`, well under a second) once built. Called from
# scripts/testbed.sh.
#
#   SWEBOX_VENVS        where venvs live (default /opt/swebox/venvs)
#   OPENHANDS_VERSION   default 1.6.0
#   PYTHON312           the interpreter (default: pyenv's 3.12, else python3.12 on PATH)
set -euo pipefail
log_dir=${SWEBOX_TESTBED_LOGS:-/var/log/swebox-testbed}
VENVS=${SWEBOX_VENVS:-/opt/swebox/venvs}
OPENHANDS_VERSION=${OPENHANDS_VERSION:-1.6.0}
venv="$VENVS/openhands-$OPENHANDS_VERSION"
log="$log_dir/venv-openhands.log"
stamp="$venv/.swebox-openhands"
want_stamp="openhands-ai==$OPENHANDS_VERSION python-dateutil<3"

say() { printf '[openhands-venv] %s\n' "$*"; }

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ]; then
  say "ready: $venv"
  exit 0
fi

py=${PYTHON312:-}
if [ -z "$py" ]; then
  for cand in /root/.pyenv/versions/3.12.*/bin/python3.12 "$(command -v python3.12 || true)"; do
    if [ -n "$cand" ] && [ -x "$cand" ]; then py=$cand; break; fi
  done
fi
[ -n "$py" ] || { say "no Python 3.12 found (pyenv install 3.12, or set PYTHON312)"; exit 1; }

mkdir -p "$log_dir" "$VENVS"
start=$(date +%s)
say "building $venv with $py (log: $log)"
rm -rf "$venv"
"$py" -m venv "$venv"
: >"$log"
"$venv/bin/pip" install -q --disable-pip-version-check "openhands-ai==$OPENHANDS_VERSION" \
  'python-dateutil<3' >>"$log" 2>&1 || { tail -n 40 "$log"; say "pip install failed"; exit 1; }
"$venv/bin/python" -c "from openhands.runtime.impl.remote.remote_runtime import RemoteRuntime" \
  >>"$log" 2>&1 || { tail -n 30 "$log"; say "openhands does not import"; exit 1; }
printf '%s\n' "$want_stamp" >"$stamp"
say "built $venv in $(( $(date +%s) - start ))s"
