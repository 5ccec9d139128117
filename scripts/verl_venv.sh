#!/usr/bin/env bash
# Builds the venv the verl adapter's tests run verl's own code in (tests/integrations/test_verl.py):
# verl 0.9.1 with its base dependencies (no rollout/trainer extras) over the CPU torch wheel that
# lies on this machine's disk, the three packages verl's agent loop imports beyond those
# (cachetools, fastapi, uvicorn: from its `verl-core` extra), and swebox itself (editable).
# Idempotent: a no-op (~0.5 s) when the venv has these versions installed and swebox's
# pyproject.toml and checkout path have not changed since swebox was installed into it. Called from
# scripts/testbed.sh.
#
#   SWEBOX_VENVS   where venvs live (default /opt/swebox/venvs)
#   VERL_VERSION   default 0.9.1
#   TORCH_VERSION  default 2.13.0 (CPU build; pip is pinned to it, so no CUDA torch comes in)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
log_dir=${SWEBOX_TESTBED_LOGS:-/var/log/swebox-testbed}
VENVS=${SWEBOX_VENVS:-/opt/swebox/venvs}
VERL_VERSION=${VERL_VERSION:-0.9.1}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
venv="$VENVS/verl"
log="$log_dir/venv-verl.log"
stamp="$venv/.swebox-pyproject.sha256"
mkdir -p "$log_dir" "$VENVS"

say() { printf '[verl-venv] %s\n' "$*"; }

# After a build: the real imports (~15 s: verl's agent loop pulls torch, ray, transformers).
probe="import verl, torch, swebox
import verl.tools.base_tool, verl.tools.schemas, verl.tools.tool_registry
import verl.experimental.agent_loop.tool_agent_loop
assert verl.__version__ == '$VERL_VERSION', verl.__version__
assert torch.__version__.split('+')[0] == '$TORCH_VERSION', torch.__version__
assert not torch.version.cuda, 'a CUDA torch got in'"
# Every later run: the installed versions only (well under a second).
quick="import importlib.metadata as m
assert m.version('verl') == '$VERL_VERSION'
assert m.version('torch') == '$TORCH_VERSION+cpu'
for name in ('cachetools', 'fastapi', 'uvicorn', 'ray', 'tensordict', 'swebox'):
    m.version(name)"
want_stamp="$here $(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
pip_() {
  "$venv/bin/pip" install -q --disable-pip-version-check -c "$venv/constraints.txt" "$@" \
    >>"$log" 2>&1 || { tail -n 40 "$log"; say "pip install $* failed"; exit 1; }
}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$quick" >/dev/null 2>&1; then
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want_stamp" ]; then
    say "swebox's dependencies changed: re-installing swebox into $venv"
    pip_ -e "$here"
    printf '%s\n' "$want_stamp" >"$stamp"
  fi
  say "ready: $venv (verl $VERL_VERSION, torch $TORCH_VERSION cpu)"
  exit 0
fi

start=$(date +%s)
say "building $venv (log: $log)"
rm -rf "$venv"
python3.11 -m venv "$venv"
: >"$log"
# Every install below is held to this torch, so nothing in verl's tree (torchdata, peft,
# accelerate, ...) can swap it for another build.
printf 'torch==%s\n' "$TORCH_VERSION" >"$venv/constraints.txt"
pip_ -U pip
pip_ "torch==$TORCH_VERSION"
t_torch=$(date +%s)
pip_ "verl==$VERL_VERSION" cachetools fastapi uvicorn
t_verl=$(date +%s)
pip_ -e "$here"
printf '%s\n' "$want_stamp" >"$stamp"
end=$(date +%s)
"$venv/bin/python" -c "$probe" >>"$log" 2>&1 || { tail -n 30 "$log"; say "the verl venv does not import"; exit 1; }
say "built $venv in $((end - start))s (torch $((t_torch - start))s, verl $((t_verl - t_torch))s, swebox $((end - t_verl))s)"
