#!/usr/bin/env bash
# Makes the local base images the podman tests build on, because no image registry is reachable
# here: a Debian bookworm rootfs (debootstrap), a Rust builder with the host's toolchain, a
# distroless base-nossl look-alike (glibc + CA certificates + user nonroot 65532) and a Claude
# Code image with the host's node, the Claude Code that scripts/test.sh installed and git (from
# the Debian mirror, like the rootfs), and a node image (the host's node and npm). Each image is made once and reused across runs (CI runs
# on this same machine); a lock serialises concurrent test processes. Prints nothing on success
# but the image names.
set -euo pipefail
CACHE=${CAL_CACHE:?CAL_CACHE not set: run scripts/test.sh}
DEBIAN=localhost/cal-test-debian:bookworm
RUST=localhost/cal-test-rust:bookworm-offline
DISTROLESS=localhost/cal-test-distroless-base-nossl:nonroot
CLAUDE=localhost/cal-test-claude:3
NODE=localhost/cal-test-node:20
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

mkdir -p "$CACHE/podman"
exec 9>"$CACHE/podman/bases.lock"
flock 9

work=$(mktemp -d "$CACHE/podman/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$CACHE/podman/rootfs-bookworm"

if ! podman image exists "$DEBIAN"; then
  if [ ! -f "$rootfs/.complete" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev,libstdc++6 \
      bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb
    touch "$rootfs/.complete"
  fi
  tar -C "$rootfs" --exclude=./.complete -c . | podman import - "$DEBIAN" >/dev/null
fi

if ! podman image exists "$RUST"; then
  toolchain=$(rustc --print sysroot)
  mkdir -p "$work/rust"
  # Hard links keep the copy into the build context cheap; docs are not needed to compile.
  cp -al "$toolchain" "$work/rust/toolchain" 2>/dev/null || cp -a "$toolchain" "$work/rust/toolchain"
  rm -rf "$work/rust/toolchain/share/doc"
  cat >"$work/rust/Containerfile" <<CF
FROM $DEBIAN
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
# Offline: crates come from a \`cargo vendor\` directory mounted at /vendor by the test.
RUN mkdir -p /usr/local/cargo && printf '%s\\n' \\
      '[source.crates-io]' 'replace-with = "vendored-sources"' \\
      '[source.vendored-sources]' 'directory = "/vendor"' '[net]' 'offline = true' \\
      > /usr/local/cargo/config.toml && cargo --version && rustc --version
CF
  podman build -q -t "$RUST" "$work/rust" >/dev/null
fi

if ! podman image exists "$DISTROLESS"; then
  d="$work/distroless"
  mkdir -p "$d/root/etc/ssl/certs" "$d/root/lib/x86_64-linux-gnu" "$d/root/lib64" \
    "$d/root/tmp" "$d/root/home/nonroot"
  cp -L "$rootfs/etc/ssl/certs/ca-certificates.crt" "$d/root/etc/ssl/certs/"
  # Like distroless base-nossl: glibc only (no libgcc_s, libssl, libstdc++); the logger image
  # adds libgcc_s itself, and this proves it does.
  for lib in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libresolv.so.2 \
    libnss_dns.so.2 libnss_files.so.2; do
    cp -L "$rootfs/usr/lib/x86_64-linux-gnu/$lib" "$d/root/lib/x86_64-linux-gnu/"
  done
  cp -L "$rootfs/usr/lib64/ld-linux-x86-64.so.2" "$d/root/lib64/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$d/root/etc/group"
  chmod 1777 "$d/root/tmp"
  chown 65532:65532 "$d/root/home/nonroot"
  cat >"$d/Containerfile" <<'CF'
FROM scratch
COPY root/ /
USER 65532:65532
WORKDIR /home/nonroot
CF
  podman build -q -t "$DISTROLESS" "$d" >/dev/null
fi

if ! podman image exists "$CLAUDE"; then
  c="$work/claude"
  mkdir -p "$c"
  cp -L "$(command -v node)" "$c/node"
  cp -a "$CACHE/npm" "$c/npm"
  cat >"$c/Containerfile" <<CF
FROM $DEBIAN
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/claude-npm
# git, as in container/claude/Containerfile, for the sandbox's clone mode; /srv/fixture.git is
# the repository its test clones (branches main and feature).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git \\
 && rm -rf /var/lib/apt/lists/* \\
 && ln -s /usr/local/lib/claude-npm/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe /usr/local/bin/claude \\
 && useradd -m -u 1000 -s /bin/bash claude && mkdir -p /workspace /home/claude/.claude \\
 && chown claude:claude /workspace /home/claude/.claude \\
 && git init -q -b main /tmp/fixture && cd /tmp/fixture \\
 && git config user.email test@example.invalid && git config user.name test \\
 && echo 'fixture on main' >fixture.txt && git add fixture.txt && git commit -qm main \\
 && git checkout -qb feature && echo 'fixture on feature' >fixture.txt && git commit -qam feature \\
 && git clone -q --bare /tmp/fixture /srv/fixture.git && rm -rf /tmp/fixture \\
 && chown -R claude:claude /srv/fixture.git
USER claude
WORKDIR /workspace
ENV IS_SANDBOX=1 DISABLE_AUTOUPDATER=1
ENTRYPOINT ["claude"]
CF
  podman build -q -t "$CLAUDE" "$c" >/dev/null
fi

# A stand-in for container/claude/Containerfile's node base image: the host's node and npm, and
# the host's CA bundle for node, because this machine reaches the npm registry through a proxy
# whose CA only that bundle holds.
if ! podman image exists "$NODE"; then
  n="$work/node"
  mkdir -p "$n"
  cp -L "$(command -v node)" "$n/node"
  cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$n/npm"
  cp -L /etc/ssl/certs/ca-certificates.crt "$n/host-ca.crt"
  cat >"$n/Containerfile" <<CF
FROM $DEBIAN
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY host-ca.crt /etc/ssl/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && npm --version
CF
  podman build -q -t "$NODE" "$n" >/dev/null
fi

echo "$DEBIAN $RUST $DISTROLESS $CLAUDE $NODE"
