#!/usr/bin/env bash
# Provisions everything swebox's test suite needs on a fresh Debian machine (run as root), then
# leaves it running: a Docker engine, Podman's Docker-compatible API, bubblewrap, the test base
# image (built once with debootstrap, then reused) in both engines, and swebox installed with its
# dev extras. Idempotent: each step is skipped when its result is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
log_dir=${SWEBOX_TESTBED_LOGS:-/var/log/swebox-testbed}
mkdir -p "$log_dir"
BASE_IMAGE=${SWEBOX_BASE_IMAGE:-swebox/testbase:bookworm}
PODMAN_SOCK=${SWEBOX_PODMAN_SOCK:-/run/podman/podman.sock}

say() { printf '[testbed] %s\n' "$*"; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v podman >/dev/null || need_pkgs+=(podman)
command -v bwrap >/dev/null || need_pkgs+=(bubblewrap)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v git >/dev/null || need_pkgs+=(git)
command -v patch >/dev/null || need_pkgs+=(patch)
command -v curl >/dev/null || need_pkgs+=(curl)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v umoci >/dev/null || need_pkgs+=(umoci)
command -v skopeo >/dev/null || need_pkgs+=(skopeo)
command -v mkfs.xfs >/dev/null || need_pkgs+=(xfsprogs)  # a reflink filesystem for cache tests
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$log_dir/apt.log" 2>&1
  apt-get install -y -qq "${need_pkgs[@]}" >>"$log_dir/apt.log" 2>&1 || { tail -n 30 "$log_dir/apt.log"; exit 1; }
fi

if ! timeout 10 docker info >/dev/null 2>&1; then
  say "starting dockerd (log: $log_dir/dockerd.log)"
  nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
  for _ in $(seq 60); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 1; done
  timeout 10 docker info >/dev/null 2>&1 || { tail -n 30 "$log_dir/dockerd.log"; say "dockerd did not come up"; exit 1; }
fi

# The tests' registry (Debian's docker-registry, started by the suite) listens on this loopback
# port over plain HTTP. Docker trusts 127.0.0.0/8 over HTTP already; Podman must be told.
REGISTRY=${SWEBOX_TEST_REGISTRY:-127.0.0.1:5055}
conf=/etc/containers/registries.conf.d/50-swebox-test.conf
want="[[registry]]
location = \"$REGISTRY\"
insecure = true"
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$want" >"$conf"
fi

if ! curl -sf --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1; then
  say "starting podman API on $PODMAN_SOCK (log: $log_dir/podman.log)"
  mkdir -p "$(dirname "$PODMAN_SOCK")"
  rm -f "$PODMAN_SOCK"
  nohup podman system service --time=0 "unix://$PODMAN_SOCK" >"$log_dir/podman.log" 2>&1 &
  for _ in $(seq 30); do curl -sf --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1 && break; sleep 1; done
  curl -sf --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1 || { tail -n 30 "$log_dir/podman.log"; say "podman API did not come up"; exit 1; }
fi

SWEBOX_BASE_IMAGE=$BASE_IMAGE bash "$here/scripts/build-base-image.sh"
BUSYBOX_IMAGE=${SWEBOX_BUSYBOX_IMAGE:-swebox/busybox:test}
SWEBOX_BUSYBOX_IMAGE=$BUSYBOX_IMAGE bash "$here/scripts/build-busybox-image.sh"
for image in "$BASE_IMAGE" "$BUSYBOX_IMAGE"; do
  if ! podman image exists "$image"; then
    say "copying $image into podman"
    docker save "$image" | podman load -q
  fi
done

# Oracles and peers in venvs of their own, built once and reused: the official SWE-bench harness
# (4.1.0 builds the v4 eval scripts offline; 5.0.2 grades rows that carry their eval_script).
VENVS=${SWEBOX_VENVS:-/opt/swebox/venvs}
for pkg in swebench==4.1.0 swebench==5.0.2; do
  venv="$VENVS/${pkg/==/-}"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import swebench" >/dev/null 2>&1; then
    say "building $venv"
    rm -rf "$venv"; mkdir -p "$VENVS"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$pkg" >"$log_dir/venv-${pkg/==/-}.log" 2>&1 \
      || { tail -n 30 "$log_dir/venv-${pkg/==/-}.log"; exit 1; }
  fi
done

# mini-swe-agent 2.4.6, the peer of benchmarks/bench_agents.py and the framework of the
# mini-swe-agent adapter's tests, with this checkout of swebox installed beside it.
mini="$VENVS/mini-swe-agent-2.4.6"
if [ ! -x "$mini/bin/python" ] || ! "$mini/bin/python" -c "import minisweagent" >/dev/null 2>&1; then
  say "building $mini"
  rm -rf "$mini"; mkdir -p "$VENVS"
  python3 -m venv "$mini"
  "$mini/bin/pip" install -q --disable-pip-version-check mini-swe-agent==2.4.6 >"$log_dir/venv-mini.log" 2>&1 \
    || { tail -n 30 "$log_dir/venv-mini.log"; exit 1; }
fi
"$mini/bin/pip" install -q --disable-pip-version-check -e "$here" >>"$log_dir/venv-mini.log" 2>&1 \
  || { tail -n 30 "$log_dir/venv-mini.log"; exit 1; }

# verl 0.9.1 over the CPU torch on disk, with swebox, for the verl adapter's tests.
bash "$here/scripts/verl_venv.sh"
bash "$here/scripts/agent_server_bundle.sh"  # OpenHands V1 agent-server bundle + its client venv
bash "$here/scripts/openhands_venv.sh"  # openhands-ai 1.6.0 (py3.12): the OpenHands V0 client

# Always: a no-op in seconds when everything is there, and it picks up new dependencies.
say "installing swebox[dev] from $here"
python3 -m pip install -q --disable-pip-version-check -e "$here[dev]" >"$log_dir/pip.log" 2>&1 || { tail -n 30 "$log_dir/pip.log"; exit 1; }
# pyenv only links new console scripts (swebox) onto PATH after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
say "ready: docker, podman ($PODMAN_SOCK), bwrap, $BASE_IMAGE, $BUSYBOX_IMAGE"
