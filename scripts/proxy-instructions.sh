#!/usr/bin/env bash
# Counts the instructions claude-api-proxy executes per exchange (all its threads, user space),
# with valgrind's callgrind. Timings on a shared 2-core machine move by 10-20% from run to run;
# this count repeats to within 0.5%, so it shows what a small change to the forwarding path
# saves. It says nothing about the kernel's share or about waiting.
#
# usage: scripts/proxy-instructions.sh [json|stream|50k] [N] [PROXY_BIN]
#   json    tiny non-streaming /v1/messages requests (default)
#   stream  tiny streaming ones (fake-anthropic's 11-event SSE answer)
#   50k     non-streaming ones with a 50 KB message, like the benchmark's POST
#   N       exchanges counted (default 2000); PROXY_BIN defaults to target/release's build.
# Needs valgrind (apt install valgrind) and the release builds:
#   cargo build --release -p claude-api-proxy -p fake-anthropic
set -euo pipefail
mode=${1:-json}
n=${2:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
proxy=${3:-$root/target/release/claude-api-proxy}
upstream_bin=$root/target/release/fake-anthropic
warmup=200
case $mode in json | stream | 50k) ;; *) echo "mode must be json, stream or 50k, not $mode" >&2; exit 64 ;; esac
command -v valgrind >/dev/null || { echo "valgrind not found: apt install valgrind" >&2; exit 1; }
for bin in "$proxy" "$upstream_bin"; do
    [ -x "$bin" ] || { echo "$bin not built: cargo build --release -p claude-api-proxy -p fake-anthropic" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

# Prints ADDR once "listening on ADDR" appears in file $1.
listen_addr() {
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$1")
        [ -n "$addr" ] && { echo "$addr"; return; }
        sleep 0.1
    done
    echo "no 'listening on' line in $1" >&2
    exit 1
}

"$upstream_bin" --listen 127.0.0.1:0 >"$work/upstream.out" &
pids+=($!)
upstream=$(listen_addr "$work/upstream.out")

# Sends $2 sequential requests on one keep-alive connection to $1.
requests() {
    python3 - "$1" "$2" "$mode" <<'EOF'
import http.client, json, sys
addr, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = addr.rsplit(":", 1)
body = json.dumps({"model": "claude-sonnet-4", "max_tokens": 10, "stream": mode == "stream",
                   "messages": [{"role": "user",
                                 "content": "x" * 50000 if mode == "50k" else "hi"}]}).encode()
headers = {"content-type": "application/json", "x-api-key": "sk-ant-test",
           "anthropic-version": "2023-06-01"}
conn = http.client.HTTPConnection(host, int(port))
for _ in range(n):
    conn.request("POST", "/v1/messages", body, headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
EOF
}

# Instructions of one proxy run serving $1 exchanges, start-up and shutdown included.
instructions() {
    rm -f "$work/log" "$work/proxy.out"
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
        "$proxy" --listen 127.0.0.1:0 --upstream "http://$upstream" --log-file "$work/log" \
        >"$work/proxy.out" 2>"$work/valgrind.err" &
    local pid=$!
    requests "$(listen_addr "$work/proxy.out")" "$1"
    kill -TERM $pid
    wait $pid
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/valgrind.err"
}

# The difference of two runs leaves the exchanges alone.
base=$(instructions $warmup)
total=$(instructions $((warmup + n)))
echo "$(basename "$proxy"), $mode: $(((total - base) / n)) instructions per exchange ($n exchanges)"
