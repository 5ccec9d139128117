#!/usr/bin/env bash
# Builds the portable OpenHands V1 agent-server bundle that swebox binds read-only into a
# sandbox of a *plain* image (docs/openhands-v1.md), and the client venv the V1 tests drive it
# with. Nothing is built per image: one bundle serves every glibc x86_64 image, whatever Python
# and libc the image has (or none: a BusyBox image works).
#
#   $SWEBOX_AGENT_SERVER (default /opt/swebox/agent-server), bound at the same path in sandboxes:
#     python/   a copy of a CPython >= 3.12 tree (pyenv's here; no tests, no tkinter, no site-packages)
#     venv/     openhands-agent-server, -sdk, -tools $OPENHANDS_VERSION, byte-compiled; its
#               bin/python3.X is a sh wrapper: lib/ld-linux-x86-64.so.2 --library-path lib
#               --argv0 <itself> python/bin/python3.X, so sys.executable re-execs the same way
#     lib/      the dynamic loader, glibc and every shared library the interpreter and the
#               compiled wheels need (the ldd closure), so the image's own libraries never load
#   $SWEBOX_VENVS/openhands-v1-client: py3.X with openhands-workspace + -sdk at the same version
#
# Idempotent: a no-op (a few milliseconds) when the stamps match; a build takes several minutes
# (pip). Called from scripts/testbed.sh.
#
#   SWEBOX_AGENT_SERVER          where the bundle lives (default /opt/swebox/agent-server)
#   SWEBOX_VENVS                 where venvs live (default /opt/swebox/venvs)
#   OPENHANDS_VERSION            default 1.58.2 (agent-server, sdk, tools, workspace)
#   SWEBOX_AGENT_SERVER_PYTHON   prefix of a CPython >= 3.12 (default: newest pyenv 3.12.x)
set -euo pipefail
BUNDLE=${SWEBOX_AGENT_SERVER:-/opt/swebox/agent-server}
VENVS=${SWEBOX_VENVS:-/opt/swebox/venvs}
OPENHANDS_VERSION=${OPENHANDS_VERSION:-1.58.2}
log_dir=${SWEBOX_TESTBED_LOGS:-/var/log/swebox-testbed}
log="$log_dir/agent-server-bundle.log"
client="$VENVS/openhands-v1-client"
FORMAT=1  # bump when the bundle's layout changes
mkdir -p "$log_dir"

say() { printf '[agent-server-bundle] %s\n' "$*"; }
die() { tail -n 30 "$log" 2>/dev/null; say "$*"; exit 1; }

prefix=${SWEBOX_AGENT_SERVER_PYTHON:-}
if [ -z "$prefix" ]; then
  prefix=$(ls -d "${PYENV_ROOT:-/root/.pyenv}"/versions/3.12.* 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$prefix" ] && [ -d "$prefix/bin" ] || die "no CPython >= 3.12 found: set SWEBOX_AGENT_SERVER_PYTHON to its prefix"
prefix=$(cd "$prefix" && pwd -P)
pyver=$(ls "$prefix"/bin/python3.[0-9]* 2>/dev/null | grep -E 'python3\.[0-9]+$' | sort -V | tail -n 1)
pyver=${pyver##*/python}
case "$pyver" in 3.1[2-9]) ;; *) die "$prefix holds python$pyver; the agent server needs >= 3.12" ;; esac
want="format=$FORMAT openhands=$OPENHANDS_VERSION python=$prefix"
want_client="openhands=$OPENHANDS_VERSION python=$prefix"

if [ "$(cat "$BUNDLE/.swebox-bundle" 2>/dev/null)" = "$want" ] && [ -x "$BUNDLE/venv/bin/python" ] \
   && [ "$(cat "$client/.swebox-client" 2>/dev/null)" = "$want_client" ]; then
  say "ready: $BUNDLE and $client (openhands $OPENHANDS_VERSION, python $pyver)"
  exit 0
fi

pip_() {  # pip_ VENV ARGS...
  local venv=$1; shift
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" >>"$log" 2>&1 \
    || die "pip install $* into $venv failed (log: $log)"
}

lib_path() {  # the host path of a library by soname, from the loader cache
  ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }'
}

build_bundle() {
  local start t_pip
  start=$(date +%s)
  say "building $BUNDLE from $prefix (log: $log)"
  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE/python" "$BUNDLE/lib"
  # The interpreter's tree, less what a server never imports.
  tar -C "$prefix" -cf - \
      --exclude="lib/python$pyver/test" --exclude="lib/python$pyver/idlelib" \
      --exclude="lib/python$pyver/tkinter" --exclude="lib/python$pyver/turtledemo" \
      --exclude="lib/python$pyver/site-packages/*" --exclude="lib/python$pyver/config-*" \
      --exclude='_tkinter*' --exclude='_test*' --exclude='_xxtestfuzz*' --exclude='xxlimited*' \
      --exclude='_ctypes_test*' --exclude='*.a' --exclude='lib/pkgconfig' \
      "bin/python$pyver" lib | tar -C "$BUNDLE/python" -xf -
  ln -s "python$pyver" "$BUNDLE/python/bin/python3"
  # The venv, made by the copy (so its home is inside the bundle); run natively meanwhile.
  "$BUNDLE/python/bin/python$pyver" -m venv "$BUNDLE/venv" >>"$log" 2>&1 || die "venv failed"
  pip_ "$BUNDLE/venv" -U pip
  pip_ "$BUNDLE/venv" "openhands-agent-server==$OPENHANDS_VERSION" \
       "openhands-sdk==$OPENHANDS_VERSION" "openhands-tools==$OPENHANDS_VERSION"
  t_pip=$(date +%s)
  # The shared-library closure of the interpreter and of every extension module.
  local missing=0 name path
  while read -r name path; do
    case "$path" in "$BUNDLE"/*) continue ;; esac
    if [ ! -e "$BUNDLE/lib/$name" ]; then cp -L "$path" "$BUNDLE/lib/$name"; fi
  done < <(find "$BUNDLE/python" "$BUNDLE/venv" -type f \( -name '*.so' -o -name '*.so.*' \
             -o -path "$BUNDLE/python/bin/python$pyver" \) -print0 \
           | xargs -0 -n 64 ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' \
           | sort -u)
  # The loader itself, and what glibc and the interpreter dlopen rather than link.
  cp -L /lib64/ld-linux-x86-64.so.2 "$BUNDLE/lib/ld-linux-x86-64.so.2"
  for name in libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 \
              libutil.so.1 libresolv.so.2 libnss_files.so.2 libnss_dns.so.2 libanl.so.1; do
    path=$(lib_path "$name")
    if [ -n "$path" ] && [ ! -e "$BUNDLE/lib/$name" ]; then cp -L "$path" "$BUNDLE/lib/$name"; fi
  done
  missing=$(find "$BUNDLE/python" "$BUNDLE/venv" -type f -name '*.so*' -print0 \
            | xargs -0 -n 64 ldd 2>/dev/null | grep -c 'not found' || true)
  [ "$missing" = 0 ] || say "note: $missing library references are not found on this host (see ldd)"
  # sys.executable: a wrapper that runs the copy through the bundle's loader and libraries.
  # --argv0 keeps the venv's path as the program name, so the interpreter finds pyvenv.cfg.
  rm -f "$BUNDLE/venv/bin/python$pyver"
  cat >"$BUNDLE/venv/bin/python$pyver" <<EOF
#!/bin/sh
exec "$BUNDLE/lib/ld-linux-x86-64.so.2" --library-path "$BUNDLE/lib" --argv0 "\$0" \\
  "$BUNDLE/python/bin/python$pyver" "\$@"
EOF
  chmod 755 "$BUNDLE/venv/bin/python$pyver"
  # Byte-code for everything: the bundle is read-only in a sandbox, nothing compiles there.
  "$BUNDLE/venv/bin/python" -m compileall -q -j0 "$BUNDLE/venv/lib" "$BUNDLE/python/lib" \
    >>"$log" 2>&1 || true
  # The probe, through the wrapper; where bubblewrap is installed, in an empty root too (only
  # the bundle and a static sh), so that a library missing from lib/ cannot hide behind the host's.
  local probe="import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, openhands.agent_server.api, sys
assert sys.executable == '$BUNDLE/venv/bin/python', sys.executable"
  env -i LITELLM_LOCAL_MODEL_COST_MAP=True "$BUNDLE/venv/bin/python" -c "$probe" >>"$log" 2>&1 \
    || die "the bundle does not import openhands.agent_server (log: $log)"
  if command -v bwrap >/dev/null && [ -x /bin/busybox ]; then
    env -i HOME=/tmp LITELLM_LOCAL_MODEL_COST_MAP=True bwrap --tmpfs /tmp --proc /proc \
        --dev /dev --ro-bind "$BUNDLE" "$BUNDLE" --ro-bind /bin/busybox /bin/sh --unshare-all \
        "$BUNDLE/venv/bin/python" -c "$probe" >>"$log" 2>&1 \
      || die "the bundle does not run in an empty root (only itself and a static sh; log: $log)"
  fi
  printf '%s\n' "$want" >"$BUNDLE/.swebox-bundle"
  say "built $BUNDLE in $(( $(date +%s) - start ))s (pip $((t_pip - start))s), $(du -sh "$BUNDLE" | cut -f1)"
}

build_client() {
  local start
  start=$(date +%s)
  say "building $client (log: $log)"
  rm -rf "$client"
  mkdir -p "$VENVS"
  "$prefix/bin/python$pyver" -m venv "$client" >>"$log" 2>&1 || die "venv failed"
  pip_ "$client" -U pip
  pip_ "$client" "openhands-workspace==$OPENHANDS_VERSION" "openhands-sdk==$OPENHANDS_VERSION"
  "$client/bin/python" -c "from openhands.workspace import APIRemoteWorkspace" >>"$log" 2>&1 \
    || die "the client venv does not import openhands.workspace (log: $log)"
  printf '%s\n' "$want_client" >"$client/.swebox-client"
  say "built $client in $(( $(date +%s) - start ))s"
}

: >"$log"
[ "$(cat "$BUNDLE/.swebox-bundle" 2>/dev/null)" = "$want" ] && [ -x "$BUNDLE/venv/bin/python" ] \
  || build_bundle
[ "$(cat "$client/.swebox-client" 2>/dev/null)" = "$want_client" ] || build_client
say "ready: $BUNDLE and $client (openhands $OPENHANDS_VERSION, python $pyver)"
