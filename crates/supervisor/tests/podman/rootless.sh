#!/usr/bin/env bash
# Sets up rootless podman for the test user given as $1 (idempotent; run as root): the user
# with subordinate id ranges, its runtime directory, a containers.conf for it, and a small
# image whose entrypoint stands in for `claude` and round-trips files in /workspace (created,
# edited, deleted), loaded into the user's own storage with `podman save` / `podman load`.
# The containers.conf sets netns="none": rootless networking cannot start on this machine
# (slirp4netns cannot open /dev/net/tun; netavark's rootless netns fails to mount its run
# directory). Prints the user's environment as NAME=VALUE lines.
set -euo pipefail
user=${1:?usage: rootless.sh USER}
CACHE=${CAL_CACHE:?CAL_CACHE not set: run scripts/test.sh}
IMAGE=localhost/cal-test-rootless-claude:1
mkdir -p "$CACHE/podman"
exec 9>"$CACHE/podman/rootless.lock"
flock 9

id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
uid=$(id -u "$user")
for f in /etc/subuid /etc/subgid; do
  grep -q "^$user:" "$f" 2>/dev/null || echo "$user:200000:65536" >>"$f"
done
runtime=/run/user/$uid
mkdir -p "$runtime" && chown "$user:" "$runtime" && chmod 0700 "$runtime"
conf="$CACHE/podman/rootless-containers.conf"
cat >"$conf" <<'CONF'
[containers]
netns = "none"
[engine]
runtime = "runc"
CONF
chmod 0644 "$conf"
as_user=(runuser -u "$user" -- env HOME="/home/$user" XDG_RUNTIME_DIR="$runtime"
  CONTAINERS_CONF="$conf")

if ! podman image exists "$IMAGE"; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/root/usr/local/bin" "$work/root/bin" "$work/root/lib64" "$work/root/workspace"
  for bin in /bin/dash /bin/rm /usr/bin/id /bin/cat; do
    cp -L "$bin" "$work/root/bin/"
    ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
      mkdir -p "$work/root$(dirname "$lib")" && cp -L "$lib" "$work/root$lib"
    done
  done
  ln -s dash "$work/root/bin/sh"
  cp -L /lib64/ld-linux-x86-64.so.2 "$work/root/lib64/"
  cat >"$work/root/usr/local/bin/claude" <<'SH'
#!/bin/sh
# Stands in for claude: the file round trip a session does in the mounted project.
set -e
echo "inside: uid=$(id -u) gid=$(id -g)"
echo created-inside >/workspace/created.txt
echo edited-inside >>/workspace/host.txt
rm /workspace/delete-me.txt
cat /workspace/host.txt
SH
  chmod 0755 "$work/root/usr/local/bin/claude"
  chown 1000:1000 "$work/root/workspace"
  printf 'FROM scratch\nCOPY root/ /\nUSER 1000:1000\nWORKDIR /workspace\nENTRYPOINT ["/usr/local/bin/claude"]\n' \
    >"$work/Containerfile"
  podman build -q -t "$IMAGE" "$work" >/dev/null
fi
if ! "${as_user[@]}" podman image exists "$IMAGE"; then
  tar="$CACHE/podman/rootless-claude.tar"
  podman save -q -o "$tar" "$IMAGE"
  chmod 0644 "$tar"
  "${as_user[@]}" podman load -q -i "$tar" >/dev/null
  rm -f "$tar"
fi
echo "HOME=/home/$user"
echo "XDG_RUNTIME_DIR=$runtime"
echo "CONTAINERS_CONF=$conf"
echo "CLAUDE_IMAGE=$IMAGE"
