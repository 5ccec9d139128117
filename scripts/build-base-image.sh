#!/usr/bin/env bash
# Builds the swebox test base image once (Debian bookworm minbase + python3, pytest, git, patch)
# and imports it into Docker. Reused afterwards: exits at once when the image exists.
set -euo pipefail
IMAGE=${SWEBOX_BASE_IMAGE:-swebox/testbase:bookworm}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE present"; exit 0
fi
# The mirror is the one this machine's apt already uses (no other host is reachable).
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
         | grep -v security | head -n1 | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
dir=$(mktemp -d /var/tmp/swebox-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "debootstrap bookworm from $mirror into $dir"
debootstrap --variant=minbase --include=python3,python3-pytest,git,patch,procps bookworm "$dir" "$mirror" >"$dir.log" 2>&1 \
  || { tail -n 20 "$dir.log"; exit 1; }
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
tar --numeric-owner -C "$dir" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$IMAGE"
rm -f "$dir.log"
echo "built $IMAGE"
