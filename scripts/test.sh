#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (as root): provision, lint, type-check, test.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/testbed.sh
ruff check swebox tests benchmarks
mypy swebox
export SWEBOX_PODMAN_HOST=${SWEBOX_PODMAN_HOST:-unix:///run/podman/podman.sock}
set +e
python3 -m pytest -p no:cacheprovider -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
# Nothing may outlive the suite.
left=$(docker ps -aq --filter label=swebox.owner | wc -l)
if [ "$left" -gt 0 ]; then
  echo "the suite left $left swebox containers behind" >&2
  docker ps -a --filter label=swebox.owner >&2
  exit 1
fi
exit "$rc"
