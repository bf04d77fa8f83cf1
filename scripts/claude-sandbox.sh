#!/usr/bin/env bash
# Runs Claude Code in a podman container, optionally with Seq (--otel) and the API traffic
# logger (--log-api) on a shared podman network. See docs/claude-sandbox.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

# Names; every one can be overridden from the environment (tests, several sandboxes at once).
SANDBOX_NAME=${SANDBOX_NAME:-claude-sandbox}
CLAUDE_IMAGE=${CLAUDE_IMAGE:-claude-sandbox:latest}
LOGGER_IMAGE=${LOGGER_IMAGE:-claude-api-logger:latest}
SEQ_IMAGE=${SEQ_IMAGE:-docker.io/datalust/seq:latest}
UPSTREAM_URL=${UPSTREAM_URL:-https://api.anthropic.com}
SEQ_UI_PORT=${SEQ_UI_PORT-5341}        # host port of Seq's UI; empty: not published
LOGGER_STOP_TIMEOUT=${LOGGER_STOP_TIMEOUT:-90}

NETWORK="$SANDBOX_NAME-net"
SEQ_CONTAINER="$SANDBOX_NAME-seq"
LOGGER_CONTAINER="$SANDBOX_NAME-api-logger"
WORKSPACE_VOLUME="$SANDBOX_NAME-workspace"
CONFIG_VOLUME="$SANDBOX_NAME-config"
SEQ_VOLUME="$SANDBOX_NAME-seq-data"
LOGGER_VOLUME="$SANDBOX_NAME-api-log"

usage() {
  cat <<EOF
Usage: $(basename "$0") [options] MODE [claude arguments...]

Modes:
  mount     run Claude Code with the current directory at /workspace
  clone     run Claude Code in a volume-backed clone of --repo (default: this repo's origin)
  recover   restart and attach to the stopped Claude container of a previous run
  build     build the Claude image and the logger image
  clean     remove sandbox pieces: --containers, --volumes, --images, --all

Options:
  --otel          start Seq and send Claude Code's OpenTelemetry logs to it
  --log-api       also start the API traffic logger (needs --otel); Claude Code talks to
                  the API through it and every request/response lands in Seq
  --no-persist    keep Seq's data in the container only (no volume)
  --repo=URL      repository for clone mode     --branch=NAME  branch for clone mode
  --rm            remove the Claude container when it exits (no recover)
  -h, --help      this help
Arguments after MODE go to Claude Code, e.g. '$(basename "$0") mount -p "hello"'.

Environment: CLAUDE_IMAGE ($CLAUDE_IMAGE), LOGGER_IMAGE ($LOGGER_IMAGE),
  SEQ_IMAGE ($SEQ_IMAGE), UPSTREAM_URL ($UPSTREAM_URL),
  SANDBOX_NAME ($SANDBOX_NAME: prefix of containers, volumes, network),
  SEQ_UI_PORT ($SEQ_UI_PORT; empty = not published), SEQ_API_KEY (optional),
  ANTHROPIC_API_KEY / ANTHROPIC_MODEL (passed to Claude Code when set).
EOF
}

log() { printf '[sandbox] %s\n' "$*" >&2; }
die() { printf '[sandbox] error: %s\n' "$1" >&2; exit "${2:-1}"; }

OTEL=false LOG_API=false PERSIST=true KEEP=true
REPO_URL="" BRANCH=""
CLEAN_CONTAINERS=false CLEAN_VOLUMES=false CLEAN_IMAGES=false
MODE=""
CLAUDE_ARGS=()
while [ $# -gt 0 ]; do
  if [ -n "$MODE" ] && [ "$MODE" != clean ]; then
    CLAUDE_ARGS+=("$1"); shift; continue
  fi
  case "$1" in
    --otel) OTEL=true ;;
    --log-api) LOG_API=true ;;
    --no-persist) PERSIST=false ;;
    --rm) KEEP=false ;;
    --repo=*) REPO_URL=${1#*=} ;;
    --branch=*) BRANCH=${1#*=} ;;
    --containers) CLEAN_CONTAINERS=true ;;
    --volumes) CLEAN_VOLUMES=true ;;
    --images) CLEAN_IMAGES=true ;;
    --all) CLEAN_CONTAINERS=true CLEAN_VOLUMES=true CLEAN_IMAGES=true ;;
    -h|--help) usage; exit 0 ;;
    mount|clone|recover|build|clean) MODE=$1 ;;
    *) usage >&2; die "unknown option or mode: $1" 64 ;;
  esac
  shift
done
[ -n "$MODE" ] || { usage >&2; die "no mode given" 64; }
if $LOG_API && ! $OTEL; then
  die "--log-api ships the API traffic to Seq, which only --otel starts: add --otel" 64
fi
command -v podman >/dev/null || die "podman is not installed"

build_logger_image() {
  log "building $LOGGER_IMAGE from container/Containerfile"
  podman build --format docker -f "$REPO_ROOT/container/Containerfile" \
    -t "$LOGGER_IMAGE" "$REPO_ROOT"
}

build_claude_image() {
  log "building $CLAUDE_IMAGE from container/claude/Containerfile"
  podman build -f "$REPO_ROOT/container/claude/Containerfile" \
    -t "$CLAUDE_IMAGE" "$REPO_ROOT/container/claude"
}

ensure_network() {
  podman network exists "$NETWORK" || podman network create "$NETWORK" >/dev/null
}

start_seq() {
  podman rm -f "$SEQ_CONTAINER" >/dev/null 2>&1 || true
  local args=(-d --name "$SEQ_CONTAINER" --network "$NETWORK" --network-alias seq
    -e ACCEPT_EULA=Y)
  if $PERSIST; then
    podman volume exists "$SEQ_VOLUME" || podman volume create "$SEQ_VOLUME" >/dev/null
    args+=(-v "$SEQ_VOLUME:/data")
  fi
  [ -z "$SEQ_UI_PORT" ] || args+=(-p "$SEQ_UI_PORT:80")
  podman run "${args[@]}" "$SEQ_IMAGE" >/dev/null
  log "Seq: http://localhost:${SEQ_UI_PORT:-<not published>} (container $SEQ_CONTAINER)"
}

start_logger() {
  podman image exists "$LOGGER_IMAGE" || build_logger_image
  podman rm -f "$LOGGER_CONTAINER" >/dev/null 2>&1 || true
  podman volume exists "$LOGGER_VOLUME" || podman volume create "$LOGGER_VOLUME" >/dev/null
  local args=(-d --name "$LOGGER_CONTAINER" --network "$NETWORK" --network-alias api-logger
    --stop-timeout "$LOGGER_STOP_TIMEOUT" -v "$LOGGER_VOLUME:/var/log"
    -e SEQ_HOST=seq -e SEQ_PORT=5341 -e UPSTREAM_URL="$UPSTREAM_URL")
  [ -z "${SEQ_API_KEY:-}" ] || args+=(-e SEQ_API_KEY)
  podman run "${args[@]}" "$LOGGER_IMAGE" >/dev/null
  local i
  for i in $(seq 1 60); do
    if podman healthcheck run "$LOGGER_CONTAINER" >/dev/null 2>&1; then
      log "API logger: http://api-logger:8000 -> $UPSTREAM_URL (container $LOGGER_CONTAINER)"
      return 0
    fi
    [ "$(podman inspect -f '{{.State.Running}}' "$LOGGER_CONTAINER" 2>/dev/null)" = true ] \
      || { podman logs "$LOGGER_CONTAINER" >&2 || true; die "the API logger exited"; }
    [ "$i" -lt 60 ] && sleep 0.5
  done
  podman logs "$LOGGER_CONTAINER" >&2 || true
  die "the API logger did not become healthy"
}

# Runs the Claude container; $1 is the workspace mount, the rest goes to Claude Code.
run_claude() {
  local workspace=$1; shift
  podman image exists "$CLAUDE_IMAGE" || build_claude_image
  podman rm -f "$SANDBOX_NAME" >/dev/null 2>&1 || true
  podman volume exists "$CONFIG_VOLUME" || podman volume create "$CONFIG_VOLUME" >/dev/null
  local args=(--name "$SANDBOX_NAME" -v "$workspace:/workspace" -v "$CONFIG_VOLUME:/home/claude/.claude")
  if [ -t 0 ] && [ -t 1 ]; then args+=(-it); else args+=(-i); fi
  $KEEP || args+=(--rm)
  local name
  for name in ANTHROPIC_API_KEY ANTHROPIC_MODEL DISABLE_ERROR_REPORTING DISABLE_TELEMETRY \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC; do
    [ -z "${!name:-}" ] || args+=(-e "$name")
  done
  if $OTEL; then
    args+=(--network "$NETWORK"
      -e CLAUDE_CODE_ENABLE_TELEMETRY=1 -e OTEL_LOGS_EXPORTER=otlp -e OTEL_LOG_USER_PROMPTS=1
      -e OTEL_EXPORTER_OTLP_ENDPOINT=http://seq:5341/ingest/otlp
      -e OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)
  fi
  if $LOG_API; then
    args+=(-e ANTHROPIC_BASE_URL=http://api-logger:8000)
  elif [ -n "${ANTHROPIC_BASE_URL:-}" ]; then
    args+=(-e ANTHROPIC_BASE_URL)
  fi
  podman run "${args[@]}" "$CLAUDE_IMAGE" --dangerously-skip-permissions "$@"
}

start_services() {
  if $OTEL; then
    ensure_network
    start_seq
  fi
  if $LOG_API; then start_logger; fi
}

case "$MODE" in
  build)
    build_claude_image
    build_logger_image
    ;;
  mount)
    start_services
    run_claude "$PWD" "${CLAUDE_ARGS[@]}"
    ;;
  clone)
    if [ -z "$REPO_URL" ]; then
      REPO_URL=$(git -C "$PWD" remote get-url origin 2>/dev/null) \
        || die "no --repo=URL given and the current directory has no git origin"
    fi
    start_services
    podman volume exists "$WORKSPACE_VOLUME" || podman volume create "$WORKSPACE_VOLUME" >/dev/null
    podman run --rm -v "$WORKSPACE_VOLUME:/workspace" --entrypoint sh "$CLAUDE_IMAGE" -c \
      'test -d /workspace/.git || git clone ${2:+--branch "$2"} "$1" /workspace' \
      sh "$REPO_URL" "$BRANCH"
    run_claude "$WORKSPACE_VOLUME" "${CLAUDE_ARGS[@]}"
    ;;
  recover)
    podman container exists "$SANDBOX_NAME" || die "no container $SANDBOX_NAME to recover"
    start_services
    podman start -ai "$SANDBOX_NAME"
    ;;
  clean)
    if ! $CLEAN_CONTAINERS && ! $CLEAN_VOLUMES && ! $CLEAN_IMAGES; then
      die "clean needs --containers, --volumes, --images or --all" 64
    fi
    if $CLEAN_CONTAINERS; then
      # The logger first, gracefully: it delivers what it has written before it exits.
      podman stop -t "$LOGGER_STOP_TIMEOUT" "$LOGGER_CONTAINER" >/dev/null 2>&1 || true
      podman rm -f "$SANDBOX_NAME" "$LOGGER_CONTAINER" "$SEQ_CONTAINER" >/dev/null 2>&1 || true
      podman network rm "$NETWORK" >/dev/null 2>&1 || true
    fi
    if $CLEAN_VOLUMES; then
      podman volume rm -f "$WORKSPACE_VOLUME" "$CONFIG_VOLUME" "$SEQ_VOLUME" "$LOGGER_VOLUME" \
        >/dev/null 2>&1 || true
    fi
    if $CLEAN_IMAGES; then
      podman rmi -f "$CLAUDE_IMAGE" "$LOGGER_IMAGE" >/dev/null 2>&1 || true
    fi
    log "cleaned"
    ;;
esac
