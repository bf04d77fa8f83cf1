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
SEQCLI_IMAGE=${SEQCLI_IMAGE:-docker.io/datalust/seqcli:latest}
UPSTREAM_URL=${UPSTREAM_URL:-https://api.anthropic.com}
SEQ_UI_PORT=${SEQ_UI_PORT-5341}        # host port of Seq's port 80 (UI and ingestion); empty: not published
SEQ_BIND=${SEQ_BIND:-127.0.0.1}        # host address that port is published on
SEQ_START_TIMEOUT=${SEQ_START_TIMEOUT:-90}
LOGGER_STOP_TIMEOUT=${LOGGER_STOP_TIMEOUT:-90}
VIEWER_PORT=${VIEWER_PORT-8001}        # host port of the logger's session viewer; empty: no viewer
VIEWER_BIND=${VIEWER_BIND:-127.0.0.1}  # host address that port is published on
# Seq's admin password and the logger's API key of each sandbox, kept while its Seq volume lives.
STATE_ROOT=${CLAUDE_SANDBOX_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/claude-sandbox}

NETWORK="$SANDBOX_NAME-net"
SEQ_CONTAINER="$SANDBOX_NAME-seq"
LOGGER_CONTAINER="$SANDBOX_NAME-api-logger"
WORKSPACE_VOLUME="$SANDBOX_NAME-workspace"
CONFIG_VOLUME="$SANDBOX_NAME-config"
SEQ_VOLUME="$SANDBOX_NAME-seq-data"
LOGGER_VOLUME="$SANDBOX_NAME-api-log"
STATE_DIR="$STATE_ROOT/$SANDBOX_NAME"

usage() {
  cat <<EOF
Usage: $(basename "$0") [options] MODE [claude arguments...]

Modes:
  mount     run Claude Code with the current directory at /workspace
  clone     run Claude Code in a volume-backed clone of --repo (default: this repo's origin)
  recover   restart and attach to the stopped Claude container of a previous run
  build     build the Claude image and the logger image
  clean     remove sandbox pieces: --containers, --volumes (with the kept Seq password and
            API key), --images, --all

Options:
  --otel          start Seq and send Claude Code's OpenTelemetry logs and traces to it
  --log-api       also start the API traffic logger (needs --otel); Claude Code talks to
                  the API through it and every request/response lands in Seq, each under
                  the Claude Code span that made it
  --no-claude-traces
                  with --otel: Claude Code sends its logs only, no spans (the logger's
                  exchanges then stay on a trace per session)
  --seq-no-auth   start a new Seq without authentication (anyone who reaches its port
                  can read everything); default: an admin password and an ingestion API key
  --no-persist    keep Seq's data in the container only (no volume)
  --repo=URL      repository for clone mode     --branch=NAME  branch for clone mode
  --rm            remove the Claude container when it exits (no recover)
  -h, --help      this help
Arguments after MODE go to Claude Code, e.g. '$(basename "$0") mount -p "hello"'.

Environment: CLAUDE_IMAGE ($CLAUDE_IMAGE), LOGGER_IMAGE ($LOGGER_IMAGE),
  SEQ_IMAGE ($SEQ_IMAGE), UPSTREAM_URL ($UPSTREAM_URL),
  SANDBOX_NAME ($SANDBOX_NAME: prefix of containers, volumes, network),
  SEQ_UI_PORT ($SEQ_UI_PORT; empty = not published), SEQ_BIND ($SEQ_BIND),
  VIEWER_PORT ($VIEWER_PORT: the session viewer of --log-api; empty = none), VIEWER_BIND ($VIEWER_BIND),
  SEQ_ADMIN_PASSWORD (Seq's admin password; default: generated once and kept),
  SEQ_API_KEY (an existing Seq API key to ingest with; default: created), SEQCLI_IMAGE,
  ANTHROPIC_API_KEY / ANTHROPIC_MODEL (passed to Claude Code when set).
Every setting, and what it does under rootless podman and SELinux: docs/claude-sandbox.md.
EOF
}

log() { printf '[sandbox] %s\n' "$*" >&2; }
die() { printf '[sandbox] error: %s\n' "$1" >&2; exit "${2:-1}"; }

OTEL=false LOG_API=false PERSIST=true KEEP=true SEQ_AUTH=true CLAUDE_TRACES=true
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
    --no-claude-traces) CLAUDE_TRACES=false ;;
    --no-persist) PERSIST=false ;;
    --seq-no-auth) SEQ_AUTH=false ;;
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
if ! $CLAUDE_TRACES && ! $OTEL; then
  die "--no-claude-traces turns off part of what --otel sends: add --otel, or drop it" 64
fi
command -v podman >/dev/null || die "podman is not installed"

# Rootless podman maps the invoking user to root inside a container; the Claude container runs
# as uid 1000, so without keep-id it could not write the mounted project (podman >= 4.3).
# SELinux hosts need the bind mount relabelled; elsewhere :Z is skipped, not needed.
read -r ROOTLESS SELINUX < <(podman info --format \
  '{{.Host.Security.Rootless}} {{.Host.Security.SELinuxEnabled}}' 2>/dev/null || echo "false false")
USERNS=()  # expanded as ${USERNS[@]+"${USERNS[@]}"}: bash 3.2 calls an empty array unbound
[ "$ROOTLESS" != true ] || USERNS=('--userns=keep-id:uid=1000,gid=1000')
MOUNT_LABEL=""
[ "$SELINUX" != true ] || MOUNT_LABEL=":Z"

build_logger_image() {
  log "building $LOGGER_IMAGE: podman build scripts/claude-api-logger/"
  (cd "$REPO_ROOT" && podman build --format docker -t "$LOGGER_IMAGE" scripts/claude-api-logger/)
}

build_claude_image() {
  log "building $CLAUDE_IMAGE from container/claude/Containerfile"
  podman build -f "$REPO_ROOT/container/claude/Containerfile" \
    -t "$CLAUDE_IMAGE" "$REPO_ROOT/container/claude"
}

ensure_claude_image() {
  podman image exists "$CLAUDE_IMAGE" || build_claude_image
}

ensure_network() {
  podman network exists "$NETWORK" || podman network create "$NETWORK" >/dev/null
}

# A second run with the same SANDBOX_NAME would replace the containers of a live session.
refuse_if_running() {
  if [ "$(podman inspect -f '{{.State.Running}}' "$SANDBOX_NAME" 2>/dev/null)" = true ]; then
    die "the sandbox $SANDBOX_NAME is running (another terminal?): attach with 'podman attach $SANDBOX_NAME', or use another SANDBOX_NAME" 1
  fi
}

secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

SEQ_ADMIN_SOURCE="" SEQ_STARTED_AT=""

# Decides Seq's first-run settings (Seq 2025.2+ refuses to start a new instance without them)
# and exports them for `podman run -e NAME` (values never on a command line).
seq_first_run() {
  local fresh=$1
  if $fresh; then rm -rf "$STATE_DIR"; fi
  if ! $PERSIST; then fresh=true; fi
  local mode
  mode=$(cat "$STATE_DIR/seq-auth" 2>/dev/null || true)
  if $fresh || [ -z "$mode" ]; then
    if $SEQ_AUTH; then mode="admin"; else mode="none"; fi
  fi
  if [ "$mode" = none ]; then
    export SEQ_FIRSTRUN_NOAUTHENTICATION=true
    SEQ_ADMIN_SOURCE="no authentication (--seq-no-auth)"
  elif [ -n "${SEQ_ADMIN_PASSWORD:-}" ]; then
    export SEQ_FIRSTRUN_ADMINPASSWORD=$SEQ_ADMIN_PASSWORD
    SEQ_ADMIN_SOURCE="user admin, the password in SEQ_ADMIN_PASSWORD"
  elif [ -s "$STATE_DIR/seq-admin-password" ]; then
    SEQ_FIRSTRUN_ADMINPASSWORD=$(cat "$STATE_DIR/seq-admin-password")
    export SEQ_FIRSTRUN_ADMINPASSWORD
    SEQ_ADMIN_SOURCE="user admin, the password in $STATE_DIR/seq-admin-password"
  elif $fresh; then
    SEQ_FIRSTRUN_ADMINPASSWORD=$(secret)
    export SEQ_FIRSTRUN_ADMINPASSWORD
    if $PERSIST; then
      SEQ_ADMIN_SOURCE="user admin, the password in $STATE_DIR/seq-admin-password"
    else
      SEQ_ADMIN_SOURCE="user admin, the password printed above"
    fi
    log "generated Seq admin password (user admin): $SEQ_FIRSTRUN_ADMINPASSWORD"
  elif [ -z "${SEQ_API_KEY:-}" ] && [ ! -s "$STATE_DIR/seq-api-key" ]; then
    die "the Seq volume $SEQ_VOLUME exists but neither its admin password nor an API key is known: set SEQ_ADMIN_PASSWORD or SEQ_API_KEY, or remove it with 'clean --volumes'" 64
  else
    SEQ_ADMIN_SOURCE="user admin, the password you set when $SEQ_VOLUME was created"
  fi
  if $PERSIST; then
    (umask 077 && mkdir -p "$STATE_DIR" && printf '%s\n' "$mode" >"$STATE_DIR/seq-auth")
    if [ -n "${SEQ_FIRSTRUN_ADMINPASSWORD:-}" ] && [ -z "${SEQ_ADMIN_PASSWORD:-}" ]; then
      (umask 077 && printf '%s\n' "$SEQ_FIRSTRUN_ADMINPASSWORD" >"$STATE_DIR/seq-admin-password")
    fi
  fi
  SEQ_MODE=$mode
}

start_seq() {
  podman rm -f "$SEQ_CONTAINER" >/dev/null 2>&1 || true
  local args=(-d --name "$SEQ_CONTAINER" --network "$NETWORK" --network-alias seq
    -e ACCEPT_EULA=Y) fresh=false
  if $PERSIST; then
    if ! podman volume exists "$SEQ_VOLUME"; then
      podman volume create "$SEQ_VOLUME" >/dev/null
      fresh=true
    fi
    args+=(-v "$SEQ_VOLUME:/data")
  fi
  seq_first_run "$fresh"
  local name
  for name in SEQ_FIRSTRUN_ADMINPASSWORD SEQ_FIRSTRUN_NOAUTHENTICATION; do
    [ -z "${!name:-}" ] || args+=(-e "$name")
  done
  [ -z "$SEQ_UI_PORT" ] || args+=(-p "$SEQ_BIND:$SEQ_UI_PORT:80")
  SEQ_STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  podman run "${args[@]}" "$SEQ_IMAGE" >/dev/null \
    || die "could not start Seq ($SEQ_IMAGE), podman's reason is above; if $SEQ_BIND:$SEQ_UI_PORT is taken, set SEQ_UI_PORT to a free port (empty: not published)"
  wait_for_seq
  seq_api_key
  print_seq_summary
}

# Seq is up when its API root answers on the network. The probe runs in the Claude image
# (bash's /dev/tcp; the Seq image may have no HTTP client), so it works without a host port.
wait_for_seq() {
  local deadline=$((SECONDS + SEQ_START_TIMEOUT))
  while true; do
    if [ "$(podman inspect -f '{{.State.Running}}' "$SEQ_CONTAINER" 2>/dev/null)" != true ]; then
      podman logs --tail 30 "$SEQ_CONTAINER" >&2 || true
      die "Seq ($SEQ_CONTAINER) exited while starting; its last log lines are above"
    fi
    if podman run --rm --network "$NETWORK" --entrypoint bash "$CLAUDE_IMAGE" -c \
      'for i in 1 2 3 4 5 6 7 8 9 10; do
         if exec 3<>/dev/tcp/seq/80; then
           printf "GET /api HTTP/1.0\r\nHost: seq\r\n\r\n" >&3
           read -r status <&3 && [[ $status == HTTP/1.?" 200"* ]] && exit 0
           exec 3<&-
         fi 2>/dev/null
         sleep 0.5
       done; exit 1' >/dev/null 2>&1; then
      log "Seq is up"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      podman logs --tail 30 "$SEQ_CONTAINER" >&2 || true
      die "Seq ($SEQ_CONTAINER) did not answer within ${SEQ_START_TIMEOUT}s; its last log lines are above"
    fi
  done
}

# With authentication on, Seq ingests only with an API key. SEQ_API_KEY names an existing one;
# otherwise the script creates one with seqcli and the admin credentials, once per Seq volume.
seq_api_key() {
  if [ "$SEQ_MODE" = none ] || [ -n "${SEQ_API_KEY:-}" ]; then return 0; fi
  if $PERSIST && [ -s "$STATE_DIR/seq-api-key" ]; then
    SEQ_API_KEY=$(cat "$STATE_DIR/seq-api-key")
    export SEQ_API_KEY
    return 0
  fi
  # seqcli generates the token and prints it alone on stdout when no --token is given, so the
  # key never appears on a command line (visible in the host's process list).
  local token
  token=$(printf '%s\n' "$SEQ_FIRSTRUN_ADMINPASSWORD" | podman run --rm -i --network "$NETWORK" \
    "$SEQCLI_IMAGE" apikey create -t "claude-sandbox $SANDBOX_NAME" \
    --permissions Ingest --connect-username admin --connect-password-stdin \
    -s http://seq) \
    || die "could not create a Seq API key with seqcli ($SEQCLI_IMAGE); set SEQ_API_KEY to an existing key with the Ingest permission"
  token=$(printf '%s' "$token" | tr -d '\r' | tail -n 1)
  [[ $token =~ ^[^[:space:]]+$ ]] \
    || die "seqcli ($SEQCLI_IMAGE) did not print the new API key's token; set SEQ_API_KEY to an existing key with the Ingest permission"
  export SEQ_API_KEY=$token
  if $PERSIST; then (umask 077 && printf '%s\n' "$token" >"$STATE_DIR/seq-api-key"); fi
  log "created the Seq API key 'claude-sandbox $SANDBOX_NAME' (Ingest) for the logger and Claude Code"
}

# Where to look; with "at-exit", also each Claude Code session this run logged.
print_seq_summary() {
  local url="not published (SEQ_UI_PORT is empty)"
  [ -z "$SEQ_UI_PORT" ] || url="http://$SEQ_BIND:$SEQ_UI_PORT"
  [ "$SEQ_BIND" != 0.0.0.0 ] || url="http://localhost:$SEQ_UI_PORT (on every host address)"
  log "Seq: $url, log in: $SEQ_ADMIN_SOURCE (container $SEQ_CONTAINER)"
  if $LOG_API; then
    print_viewer
    [ "${1:-}" != at-exit ] || print_sessions
    log "this run's API exchanges in Seq: has(claude.outcome) and @Timestamp >= DateTime('$SEQ_STARTED_AT')"
  fi
}

# The logger's own viewer lists the sessions of its log (docs/viewer.md).
print_sessions() {
  local id
  for id in $(podman exec "$LOGGER_CONTAINER" claude-api-logger sessions --json \
    --since "$SEQ_STARTED_AT" 2>/dev/null | sed -n 's/^ *"session_id": "\([^" ]*\)",$/\1/p'); do
    log "session $id in Seq: session.id = '$id'; without Seq: podman exec -t $LOGGER_CONTAINER claude-api-logger show $id"
    [ -z "$VIEWER_URL" ] || log "session $id in the viewer: $VIEWER_URL/session/$id"
  done
}

# The session viewer (claude-api-logger serve, docs/viewer.md) runs in the logger container,
# published on the host only. The Claude container shares the logger's network, so the viewer
# needs a token on every request; only the user gets it, in the address printed here and in
# the base of Seq's claude.view.url links (the Claude container is never given it).
VIEWER_URL="" VIEWER_ARGS=()
viewer_settings() {
  [ -n "$VIEWER_PORT" ] || return 0
  local token="" host=$VIEWER_BIND
  if $PERSIST; then token=$(cat "$STATE_DIR/viewer-token" 2>/dev/null || true); fi
  if [ -z "$token" ]; then
    token=$(secret)
    if $PERSIST; then
      (umask 077 && mkdir -p "$STATE_DIR" && printf '%s\n' "$token" >"$STATE_DIR/viewer-token")
    fi
  fi
  [ "$host" != 0.0.0.0 ] || host=localhost
  VIEWER_URL="http://$host:$VIEWER_PORT/t/$token"
  export VIEWER_TOKEN=$token VIEW_BASE_URL=$VIEWER_URL
  VIEWER_ARGS=(-p "$VIEWER_BIND:$VIEWER_PORT:8001" -e VIEWER_LISTEN=0.0.0.0:8001
    -e VIEWER_TOKEN -e VIEW_BASE_URL)
}

print_viewer() {
  [ -z "$VIEWER_URL" ] || log "session viewer: $VIEWER_URL/ (the token in it is the viewer's password; Seq's claude.view.url links carry it)"
}

start_logger() {
  podman image exists "$LOGGER_IMAGE" || build_logger_image
  podman rm -f "$LOGGER_CONTAINER" >/dev/null 2>&1 || true
  podman volume exists "$LOGGER_VOLUME" || podman volume create "$LOGGER_VOLUME" >/dev/null
  # The health check is given here, so the image may be built in OCI format (no HEALTHCHECK).
  local args=(-d --name "$LOGGER_CONTAINER" --network "$NETWORK" --network-alias api-logger
    --stop-timeout "$LOGGER_STOP_TIMEOUT" -v "$LOGGER_VOLUME:/var/log"
    --health-cmd '["/usr/local/bin/claude-api-logger","health"]' --health-interval 15s
    --health-timeout 3s --health-start-period 5s --health-retries 3
    -e SEQ_HOST=seq -e SEQ_PORT=5341 -e UPSTREAM_URL="$UPSTREAM_URL")
  [ -z "${SEQ_API_KEY:-}" ] || args+=(-e SEQ_API_KEY)
  viewer_settings
  args+=(${VIEWER_ARGS[@]+"${VIEWER_ARGS[@]}"})
  # Without a systemd user session podman cannot schedule the periodic check and says so as an
  # error; the check that matters is run below, so that line is left out. (A file, not a pipe:
  # a pipe's reader was seen waiting for ever, a helper podman started keeping it open.)
  local errors
  errors=$(mktemp)
  podman run "${args[@]}" "$LOGGER_IMAGE" >/dev/null 2>"$errors" \
    || { cat "$errors" >&2; rm -f "$errors"; die "could not start the API logger ($LOGGER_IMAGE), podman's reason is above; if $VIEWER_BIND:$VIEWER_PORT is taken, set VIEWER_PORT to a free port (empty: no viewer)"; }
  grep -v 'systemd connection' "$errors" >&2 || true
  rm -f "$errors"
  local i
  for i in $(seq 1 60); do
    if podman healthcheck run "$LOGGER_CONTAINER" >/dev/null 2>&1; then
      log "API logger: http://api-logger:8000 -> $UPSTREAM_URL (container $LOGGER_CONTAINER)"
      print_viewer
      return 0
    fi
    [ "$(podman inspect -f '{{.State.Running}}' "$LOGGER_CONTAINER" 2>/dev/null)" = true ] \
      || { podman logs "$LOGGER_CONTAINER" >&2 || true; die "the API logger exited"; }
    [ "$i" -lt 60 ] && sleep 0.5
  done
  podman logs "$LOGGER_CONTAINER" >&2 || true
  die "the API logger did not become healthy"
}

# A logger left by an earlier --log-api run: stopped (it delivers first) when this run has none.
stop_stale_logger() {
  if podman container exists "$LOGGER_CONTAINER"; then
    log "stopping the API logger of an earlier --log-api run ($LOGGER_CONTAINER)"
    podman stop -t "$LOGGER_STOP_TIMEOUT" "$LOGGER_CONTAINER" >/dev/null 2>&1 || true
    podman rm -f "$LOGGER_CONTAINER" >/dev/null 2>&1 || true
  fi
}

# Runs the Claude container; $1 is the workspace (a host directory or a volume), $2 its mount
# options (":Z" or nothing), the rest goes to Claude Code.
run_claude() {
  local workspace=$1 options=$2; shift 2
  podman rm -f "$SANDBOX_NAME" >/dev/null 2>&1 || true
  podman volume exists "$CONFIG_VOLUME" || podman volume create "$CONFIG_VOLUME" >/dev/null
  # CLAUDE_CONFIG_DIR puts ~/.claude.json (onboarding, settings) on the config volume too.
  local args=(--name "$SANDBOX_NAME" -v "$workspace:/workspace$options" ${USERNS[@]+"${USERNS[@]}"}
    -v "$CONFIG_VOLUME:/home/claude/.claude" -e CLAUDE_CONFIG_DIR=/home/claude/.claude)
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
    if $CLAUDE_TRACES; then
      # Spans per prompt, model request and tool; with the logger, each model request also
      # carries a traceparent, so the logger's exchange lands under its llm_request span.
      args+=(-e OTEL_TRACES_EXPORTER=otlp -e CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1)
      ! $LOG_API || args+=(-e CLAUDE_CODE_PROPAGATE_TRACEPARENT=1)
    fi
    if [ -n "${SEQ_API_KEY:-}" ]; then
      export OTEL_EXPORTER_OTLP_HEADERS="X-Seq-ApiKey=$SEQ_API_KEY"
      args+=(-e OTEL_EXPORTER_OTLP_HEADERS)
    fi
  fi
  if $LOG_API; then
    args+=(-e ANTHROPIC_BASE_URL=http://api-logger:8000)
  elif [ -n "${ANTHROPIC_BASE_URL:-}" ]; then
    args+=(-e ANTHROPIC_BASE_URL)
  fi
  local status=0
  podman run "${args[@]}" "$CLAUDE_IMAGE" --dangerously-skip-permissions "$@" || status=$?
  return "$status"
}

# Claude Code's screen covers what was printed before it: say where Seq is again at the end.
on_exit() {
  local status=$?
  if $OTEL && [ -n "$SEQ_STARTED_AT" ]; then print_seq_summary at-exit; fi
  exit "$status"
}

start_services() {
  refuse_if_running
  ensure_claude_image
  if $OTEL; then
    ensure_network
    start_seq
    trap on_exit EXIT
  fi
  if $LOG_API; then start_logger; else stop_stale_logger; fi
}

case "$MODE" in
  build)
    build_claude_image
    build_logger_image
    ;;
  mount)
    start_services
    # ${a[@]+"${a[@]}"}: an empty array is "unbound" under set -u in bash 3.2 (macOS).
    run_claude "$PWD" "$MOUNT_LABEL" ${CLAUDE_ARGS[@]+"${CLAUDE_ARGS[@]}"}
    ;;
  clone)
    if [ -z "$REPO_URL" ]; then
      REPO_URL=$(git -C "$PWD" remote get-url origin 2>/dev/null) \
        || die "no --repo=URL given and the current directory has no git origin"
    fi
    start_services
    podman volume exists "$WORKSPACE_VOLUME" || podman volume create "$WORKSPACE_VOLUME" >/dev/null
    podman run --rm -v "$WORKSPACE_VOLUME:/workspace" ${USERNS[@]+"${USERNS[@]}"} --entrypoint sh "$CLAUDE_IMAGE" -c \
      'test -d /workspace/.git || git clone ${2:+--branch "$2"} "$1" /workspace' \
      sh "$REPO_URL" "$BRANCH"
    run_claude "$WORKSPACE_VOLUME" "" ${CLAUDE_ARGS[@]+"${CLAUDE_ARGS[@]}"}
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
      rm -rf "$STATE_DIR"
    fi
    if $CLEAN_IMAGES; then
      podman rmi -f "$CLAUDE_IMAGE" "$LOGGER_IMAGE" >/dev/null 2>&1 || true
    fi
    log "cleaned"
    ;;
esac
