#!/usr/bin/env bash
# Builds the real logger image with the documented command, `podman build -t TAG
# scripts/claude-api-logger/` run from the repository root, offline: the only additions are the
# local bases that bases.sh makes (no registry here) and crates from a `cargo vendor` directory
# (refreshed when Cargo.lock changes) mounted at /vendor. Usage: build-logger.sh IMAGE_TAG
# [podman build options, e.g. --format docker]. Prints the build seconds.
set -euo pipefail
tag=${1:?usage: build-logger.sh IMAGE_TAG [podman build options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
CACHE=${CAL_CACHE:?CAL_CACHE not set: run scripts/test.sh}
read -r _debian rust distroless _claude < <("$here/bases.sh")

vendor="$CACHE/podman/vendor"
exec 8>"$CACHE/podman/vendor.lock"
flock 8
lock_hash=$(sha256sum "$root/Cargo.lock" | cut -c1-16)
if [ "$(cat "$vendor/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  rm -rf "$vendor"
  (cd "$root" && cargo vendor --locked --quiet "$vendor" >/dev/null)
  echo "$lock_hash" >"$vendor/.lock-hash"
fi

# One build at a time: parallel tests share the tag and the build cache.
exec 7>"$CACHE/podman/build-logger.lock"
flock 7
start=$(date +%s)
(cd "$root" && podman build "$@" --build-arg RUST_IMAGE="$rust" \
  --build-arg RUNTIME_IMAGE="$distroless" -v "$vendor:/vendor:ro" \
  -t "$tag" scripts/claude-api-logger/) >"$CACHE/podman/build-logger.log" 2>&1 \
  || { tail -40 "$CACHE/podman/build-logger.log" >&2; exit 1; }
# The previous build's stage image is dangling now; the cache mounts keep what matters. The
# other test image builds hold these locks, so no build loses an intermediate image.
flock "$CACHE/podman/peers.lock" flock "$CACHE/podman/bases.lock" \
  podman image prune -f >/dev/null 2>&1 || true
echo "$(( $(date +%s) - start ))"
