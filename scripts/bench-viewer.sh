#!/usr/bin/env bash
# How fast `claude-api-logger sessions` reads a big log, and how soon `claude-api-logger serve`
# answers its first page (from its start to the session list received: it indexes the log
# first), against `cat` and `wc -l` reading the same file in the same run (page cache warm, the
# commands interleaved so that the machine's load falls on all of them alike); median of RUNS
# runs (docs/performance.md, "Session viewer").
#
#   scripts/bench-viewer.sh                        # 1 GB log in /tmp, 3 runs
#   RUNS=5 MB=2000 scripts/bench-viewer.sh
#   OLD=/tmp/old-claude-api-logger scripts/bench-viewer.sh   # also time another build (A/B)
#   PROFILE=debug RUNS=1 MB=20 scripts/bench-viewer.sh       # the smoke run of scripts/test.sh
#
# Needs GNU time (/usr/bin/time, Debian package `time`) for CPU seconds and peak RSS, and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
mb=${MB:-1000}
log=${LOG:-/tmp/viewer-bench-${mb}mb.log}
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }

profile=${PROFILE:-release}
flag=--release
[ "$profile" = release ] || flag=
cargo build $flag -q -p claude-api-logger
cargo build $flag -q -p viewer --example gen_log
[ -s "$log" ] || "target/$profile/examples/gen_log" many "$log" "$mb"
bytes=$(stat -c %s "$log")
new=target/$profile/claude-api-logger
"$new" sessions --json --log-file "$log" > /dev/null # warms the page cache, checks it works

out=$(mktemp)
trap 'rm -f "$out" "$out.t" "$out.serve"' EXIT
timed() { # NAME COMMAND...: one line "NAME wall user sys maxrss_kb" into $out
    local name=$1
    shift
    /usr/bin/time -f "$name %e %U %S %M" -o "$out.t" "$@" > /dev/null
    cat "$out.t" >> "$out"
}
# serve: start to the first page answered; its CPU seconds and peak RSS from /proc then.
serve_first_page() {
    local start pid port="" ticks
    start=$(date +%s.%N)
    "$new" serve --listen 127.0.0.1:0 --log-file "$log" > "$out.serve" 2>/dev/null &
    pid=$!
    for _ in $(seq 2000); do
        port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$out.serve")
        [ -n "$port" ] && break
        sleep 0.005
    done
    [ -n "$port" ] || { echo "serve printed no address" >&2; kill "$pid"; exit 1; }
    curl -sf --max-time 120 -o /dev/null "http://127.0.0.1:$port/" \
        || { echo "serve did not answer its first page" >&2; kill "$pid"; exit 1; }
    ticks=$(getconf CLK_TCK)
    awk -v s="$start" -v e="$(date +%s.%N)" -v t="$ticks" -v rss="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" \
        '{ printf "serve_first_page %.3f %.2f %.2f %s\n", e - s, $14 / t, $15 / t, rss }' "/proc/$pid/stat" >> "$out"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

for _ in $(seq "$runs"); do
    timed cat cat "$log"
    timed wc_l wc -l "$log"
    timed sessions "$new" sessions --json --log-file "$log"
    serve_first_page
    [ -z "${OLD:-}" ] || timed sessions_old "$OLD" sessions --json --log-file "$log"
done

echo "$bytes bytes, $runs runs, medians; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %8s %8s %10s %14s %10s\n' command wall_s cpu_s MB/s MB/s_per_cpu peak_RSS_MB
for name in cat wc_l sessions serve_first_page ${OLD:+sessions_old}; do
    awk -v n="$name" -v b="$bytes" '
        $1 == n { wall[++k] = $2; cpu[k] = $3 + $4; rss[k] = $5 }
        function median(a, m,   i, j, t) {
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return a[int((m + 1) / 2)]
        }
        END {
            w = median(wall, k); c = median(cpu, k); r = median(rss, k)
            printf "%-16s %8.2f %8.2f %10.0f %14.0f %10.1f\n", n, w, c, b / 1e6 / (w > 0 ? w : 0.01), b / 1e6 / (c > 0 ? c : 0.01), r / 1024
        }' "$out"
done
