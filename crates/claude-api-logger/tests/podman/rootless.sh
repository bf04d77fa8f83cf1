#!/usr/bin/env bash
# Sets up rootless podman for the test user $1 the way a workstation has it (idempotent; run as
# root): the user with subordinate id ranges, its runtime directory, /dev/net/tun open to every
# user (mode 0666, as desktop distributions ship it; rootless networks need it), overlay storage
# of its own (native rootless overlay shares layers; vfs would copy each image whole), and the
# images named after the user copied from root's storage into the user's (podman save / load)
# when missing or changed. Prints the user's environment as NAME=VALUE lines.
set -euo pipefail
user=${1:?usage: rootless.sh USER [IMAGE...]}
shift
CACHE=${CAL_CACHE:?CAL_CACHE not set: run scripts/test.sh}
mkdir -p "$CACHE/podman"
exec 9>"$CACHE/podman/rootless.lock"
flock 9

id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
for f in /etc/subuid /etc/subgid; do
  grep -q "^$user:" "$f" 2>/dev/null || echo "$user:200000:65536" >>"$f"
done
runtime=/run/user/$uid
mkdir -p "$runtime" && chown "$user:" "$runtime" && chmod 0700 "$runtime"
chmod 0666 /dev/net/tun
conf="$CACHE/podman/rootless-containers.conf"
printf '[engine]\nruntime = "runc"\n' >"$conf"
chmod 0644 "$conf"
as_user=(runuser -u "$user" -- env HOME="$home" XDG_RUNTIME_DIR="$runtime"
  CONTAINERS_CONF="$conf")
if [ ! -f "$home/.config/containers/storage.conf" ]; then
  "${as_user[@]}" podman system reset -f >/dev/null 2>&1 || true  # a vfs store of older runs
  "${as_user[@]}" mkdir -p "$home/.config/containers"
  "${as_user[@]}" sh -c "printf '[storage]\ndriver = \"overlay\"\n' >'$home/.config/containers/storage.conf'"
fi

stale=()
for image in "$@"; do
  want=$(podman image inspect -f '{{.Id}}' "$image")
  have=$("${as_user[@]}" podman image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  [ "$want" = "$have" ] || stale+=("$image")
done
if [ ${#stale[@]} -gt 0 ]; then
  tar="$CACHE/podman/rootless-images.tar"
  podman save -q -m -o "$tar" "${stale[@]}"
  chmod 0644 "$tar"
  "${as_user[@]}" podman load -q -i "$tar" >/dev/null
  rm -f "$tar"
  "${as_user[@]}" podman image prune -f >/dev/null
fi
echo "HOME=$home"
echo "XDG_RUNTIME_DIR=$runtime"
echo "CONTAINERS_CONF=$conf"
