#!/usr/bin/env bash
# Builds a minimal test image holding nothing but a static BusyBox (no bash, no coreutils, no
# git): swebox's promise is that any image with /bin/sh works, and this is what checks it.
set -euo pipefail
IMAGE=${SWEBOX_BUSYBOX_IMAGE:-swebox/busybox:test}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "busybox image $IMAGE present"; exit 0
fi
[ -x /bin/busybox ] || { echo "needs Debian's busybox-static" >&2; exit 1; }
dir=$(mktemp -d /var/tmp/swebox-busybox.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,tmp,root,etc,proc,dev,sys}
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/etc/passwd"
echo 'root:x:0:' > "$dir/etc/group"
tar --numeric-owner -C "$dir" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE"
echo "built $IMAGE"
