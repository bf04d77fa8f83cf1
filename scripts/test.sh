#!/usr/bin/env bash
# Runs the whole test suite. First installs what the tests need, idempotently, cached under
# $CAL_CACHE: podman (+runc), nginx, shellcheck, debootstrap and chromium from apt; the real
# Claude Code CLI and playwright-core from npm; a Python venv with the official anthropic SDK,
# opentelemetry-proto and rotel; LiteLLM's price file from the litellm wheel.
# Tests find these through the variables exported below and fail, naming this script, when one
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${CAL_CACHE:-/var/cache/claude-api-logger-ci}
CLAUDE_CODE_VERSION=2.1.332
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO mkdir -p "$CACHE"
$SUDO chown "$(id -u):$(id -g)" "$CACHE"

step() { printf '\n== %s\n' "$*"; }

apt_pkgs=(podman runc nginx-light shellcheck debootstrap uidmap iproute2 openssl ca-certificates
  chromium curl)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if [ "$("$CACHE/npm/bin/claude" --version 2>/dev/null)" != "$CLAUDE_CODE_VERSION (Claude Code)" ]; then
  step "npm install @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
  npm install --no-fund --no-audit --prefix "$CACHE/npm" -g "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi

PLAYWRIGHT_VERSION=1.65.2
if [ "$(node -p "require('$CACHE/npm/lib/node_modules/playwright-core/package.json').version" 2>/dev/null)" != "$PLAYWRIGHT_VERSION" ]; then
  step "npm install playwright-core@$PLAYWRIGHT_VERSION (drives Debian's chromium; no browser download)"
  npm install --no-fund --no-audit --prefix "$CACHE/npm" -g "playwright-core@$PLAYWRIGHT_VERSION"
fi

PY_REQS="anthropic==2.14.0 opentelemetry-proto==1.45.2 rotel==0.0.1a15"
if [ "$(cat "$CACHE/venv/.complete" 2>/dev/null)" != "$PY_REQS" ]; then
  step "python venv: $PY_REQS"
  rm -rf "$CACHE/venv"
  python3 -m venv "$CACHE/venv"
  # shellcheck disable=SC2086 # one word per requirement
  "$CACHE/venv/bin/pip" install -q $PY_REQS
  echo "$PY_REQS" > "$CACHE/venv/.complete"
fi

# LiteLLM's price file, from the litellm wheel (no install, no dependencies): a test compares
# the built-in price table with it (crates/pricing/tests/litellm_agrees.rs).
LITELLM_VERSION=1.110.2
LITELLM_PRICES="$CACHE/litellm/$LITELLM_VERSION/model_prices_and_context_window_backup.json"
if [ ! -s "$LITELLM_PRICES" ]; then
  step "pip download litellm==$LITELLM_VERSION (its price file only)"
  mkdir -p "$CACHE/litellm/$LITELLM_VERSION"
  "$CACHE/venv/bin/pip" download -q --no-deps "litellm==$LITELLM_VERSION" -d "$CACHE/litellm/$LITELLM_VERSION"
  "$CACHE/venv/bin/python" - "$CACHE/litellm/$LITELLM_VERSION" <<'PY'
import glob, sys, zipfile
dest = sys.argv[1]
(wheel,) = glob.glob(dest + "/litellm-*.whl")
with zipfile.ZipFile(wheel) as z:
    data = z.read("litellm/model_prices_and_context_window_backup.json")
open(dest + "/model_prices_and_context_window_backup.json", "wb").write(data)
PY
  rm -f "$CACHE/litellm/$LITELLM_VERSION"/*.whl
fi

# Podman on these machines needs runc and raised ulimits (see docs/development.md).
cat > "$CACHE/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
[engine]
runtime = "runc"
CONF

# A one-off build of the whole workspace gains nothing from incremental data (~1 GB of target/),
# and some CI machines have little disk: say how much there is before building.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step "free disk"
df -h . "$CACHE" /var/lib/containers 2>/dev/null || df -h .
trap 'echo; df -h . || true' EXIT

export CONTAINERS_CONF="$CACHE/containers.conf"
export CAL_CACHE="$CACHE"
export CLAUDE_BIN="$CACHE/npm/bin/claude"
export TEST_PYTHON="$CACHE/venv/bin/python"
export LITELLM_PRICES
export PATH="$CACHE/venv/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo nextest run"
cargo nextest run --workspace --locked --no-fail-fast "$@"
step "benchmark smoke runs"
cargo test --locked -p claude-api-proxy --bench overhead -- --smoke
cargo test --locked -p otlp-shipper --bench throughput -- --smoke
smoke_log=$(mktemp -u /tmp/viewer-smoke.XXXXXX.log)
PROFILE=debug RUNS=1 MB=20 LOG="$smoke_log" scripts/bench-viewer.sh
rm -f "$smoke_log"
