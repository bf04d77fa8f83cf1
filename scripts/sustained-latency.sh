#!/usr/bin/env bash
# Latency of sequential 50 KB POSTs held for SECS seconds (wrk, one connection), through nginx,
# through nginx while another process appends the same volume of log lines, and through
# claude-api-proxy, which logs every exchange. Shows what writing ~200 MB/s of log costs the
# p99 on this machine, whoever writes it. A diagnostic, not in CI.
#
# usage: scripts/sustained-latency.sh [SECS] [ROUNDS] [NAME=PATH ...]   (defaults: 6 s, 3 rounds)
# Each NAME=PATH is another build of claude-api-proxy, measured in the same rounds (an A/B of
# two builds: the sustained p99 shows what the benchmark's short phases cannot resolve).
# Needs wrk and nginx (apt install wrk nginx-light), python3, and the release builds:
#   cargo build --release -p claude-api-proxy -p fake-anthropic
set -euo pipefail
secs=${1:-6}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))
root=$(cd "$(dirname "$0")/.." && pwd)
release=$root/target/release
for tool in wrk nginx python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt install wrk nginx-light python3" >&2; exit 1; }
done
for bin in claude-api-proxy fake-anthropic; do
    [ -x "$release/$bin" ] || { echo "$release/$bin not built: cargo build --release -p claude-api-proxy -p fake-anthropic" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work" # nginx's workers run as nobody when started as root
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
upstream=127.0.0.1:$(free_port)
via_nginx=127.0.0.1:$(free_port)
via_ours=127.0.0.1:$(free_port)

"$release/fake-anthropic" --listen "$upstream" >/dev/null &
pids+=($!)
# The benchmark's nginx (crates/claude-api-proxy/benches/overhead.rs): streaming both ways, keep-alive.
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy_temp;
    client_max_body_size 64m;
    keepalive_requests 1000000;
    upstream anthropic { server $upstream; keepalive 128; keepalive_requests 1000000; }
    server {
        listen $via_nginx;
        location / {
            proxy_pass http://anthropic; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 600s;
        }
    }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" -g 'daemon off;' &
pids+=($!)
"$release/claude-api-proxy" --listen "$via_ours" --upstream "http://$upstream" \
    --log-file "$work/traffic.log" >/dev/null 2>&1 &
pids+=($!)
also_names=() also_addrs=()
for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    if [ "$name" = "$spec" ] || [ ! -x "$bin" ]; then
        echo "not NAME=PATH to an executable: $spec" >&2
        exit 64
    fi
    addr=127.0.0.1:$(free_port)
    "$bin" --listen "$addr" --upstream "http://$upstream" --log-file "$work/also-$name.log" >/dev/null 2>&1 &
    pids+=($!)
    also_names+=("$name") also_addrs+=("$addr")
done

# The benchmark's 50 KB Messages body, sent by wrk.
python3 - "$work/body.json" <<'EOF'
import sys
head = '{"model":"claude-bench","max_tokens":1024,"stream":false,"system":"You are a benchmark.","messages":[{"role":"user","content":"'
tail = '"}]}'
open(sys.argv[1], "w").write(head + "x" * (50 * 1024 - len(head) - len(tail)) + tail)
EOF
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "sk-ant-bench"
local f = io.open("$work/body.json", "r")
wrk.body = f:read("*a")
f:close()
EOF

# Appends 52 KB lines at ~4,000 a second (claude-api-proxy's rate and volume here) at nice 19,
# releasing the page cache every 16 MiB as its writer does.
log_writer() {
    python3 - "$1" "$work/writer.log" <<'EOF'
import os, sys, time
secs, path = float(sys.argv[1]), sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
os.nice(19)
line = b"x" * (52 * 1024 - 1) + b"\n"
start, since, advised_from, advised_to, n = time.monotonic(), 0, 0, 0, 0
while time.monotonic() - start < secs:
    os.write(fd, line)
    since, n = since + len(line), n + 1
    if since >= 16 << 20:
        since, end = 0, os.lseek(fd, 0, os.SEEK_CUR)
        os.posix_fadvise(fd, advised_from, end - advised_from, os.POSIX_FADV_DONTNEED)
        advised_from, advised_to = advised_to, end
    pause = start + n / 4000 - time.monotonic()
    if pause > 0:
        time.sleep(pause)
EOF
}

# measure ADDR [with-writer]: p50, p99 and requests/s of SECS seconds of sequential POSTs.
measure() {
    for log in "$work"/*.log; do : >"$log"; done
    sync
    sleep 2
    local writer=
    if [ -n "${2:-}" ]; then
        log_writer "$((secs + 1))" &
        writer=$!
    fi
    wrk -t1 -c1 -d"${secs}s" --latency -s "$work/post.lua" "http://$1/v1/messages" |
        awk '/^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2} /Requests\/sec/ {rps = $2}
             END {printf "p50 %-9s p99 %-9s requests/s %s\n", p50, p99, rps}'
    [ -z "$writer" ] || wait "$writer"
}

# Every target in every round; the order turns each round and runs backwards every other one
# (as in the benchmark), so that no target always follows the same one.
labels=(nginx "nginx + a 200 MB/s log writer" claude-api-proxy "${also_names[@]}")
addrs=("$via_nginx" "$via_nginx" "$via_ours" "${also_addrs[@]}")
modes=("" with-writer "" "${also_names[@]/*/}")
n=${#labels[@]}
sleep 1
for round in $(seq "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
        j=$(((k + round) % n))
        [ $((round % 2)) = 1 ] || j=$((n - 1 - j))
        printf 'round %s  %-29s ' "$round" "${labels[$j]}"
        measure "${addrs[$j]}" "${modes[$j]}"
    done
done
