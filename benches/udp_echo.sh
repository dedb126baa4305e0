#!/bin/bash
# UDP echo: ringloop's pooled multishot receive against tokio, with ringloop's plain
# recv_from/send_to loop beside them, per datagram.
#
#   cargo build --release --example udp_echo --example udp_echo_tokio --example udp_echo_client
#   bash benches/udp_echo.sh [REPS] [SECONDS]          # 3 5: about 5 minutes
#
# For each cell (clients x size) and each repetition it runs, back to back, the ringloop server
# (`udp_echo`), ringloop's `--plain` one and tokio's (`udp_echo_tokio`), each pinned to CPU 0
# with the load client (`udp_echo_client`, closed loop, every byte checked) on CPU 1 for
# SECONDS (1 s warm-up, then the measured window). The server's on-CPU time comes from
# /proc/PID/schedstat (ns) over a window inside the client's measured one; its user share from
# `perf record -e cpu-clock -F 1000` samples over that window (kernel addresses start with
# ffff), as in echo_user_cpu.sh. µs per datagram = that time / (the client's datagrams/s x the
# window). Each ratio is ringloop's figure / tokio's in the same repetition; the table shows
# the median over repetitions of each figure and of each ratio. `lost` sums the client's
# unanswered datagrams (1 s timeout) over the repetitions.
#
# CELLS="1x64 64x1024" picks cells; RINGLOOP_ARGS="--depth 1" passes flags to the
# pooled server. Needs perf (linux-perf) and permission to sample the server (root, or
# perf_event_paranoid <= 1). Loopback only; every process is stopped by its pid.
set -euo pipefail

reps=${1:-3}
secs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/examples}
cells=${CELLS:-"1x64 1x1024 16x64 16x1024 64x64 64x1024"}
ringloop_args=${RINGLOOP_ARGS:-}

[ "$secs" -ge 3 ] || { echo "udp_echo: SECONDS must be at least 3 (1 s warm-up, then the window)"; exit 1; }
command -v perf >/dev/null || { echo "udp_echo: needs perf (apt-get install linux-perf)"; exit 1; }
for b in udp_echo udp_echo_tokio udp_echo_client; do
    [ -x "$bin/$b" ] || { echo "udp_echo: build first: cargo build --release --example $b"; exit 1; }
done
tmp=$(mktemp -d)
cleanup() {
    # Only the processes this script started, by the pids `measure` (a subshell) leaves in files.
    local f
    for f in "$tmp/client.pid" "$tmp/server.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# The measured server window: it starts 0.1 s into the client's measured window and ends 0.1 s
# before it, so start-up and the tail are outside it.
window=$(awk -v s="$secs" 'BEGIN { printf "%.1f", s - 1.2 }')

# measure SERVER CLIENTS SIZE -> "user_us total_us dps p99_us lost failures"
measure() {
    local which=$1 clients=$2 size=$3 port server args spid cpid t0 t1
    case $which in
    ringloop) port=7890 server=udp_echo args=$ringloop_args ;;
    plain) port=7892 server=udp_echo args=--plain ;;
    tokio) port=7891 server=udp_echo_tokio args= ;;
    esac
    # shellcheck disable=SC2086 # $args is a list of flags
    taskset -c 0 "$bin/$server" --addr 127.0.0.1:$port $args >"$tmp/server.out" 2>&1 &
    spid=$!
    echo $spid >"$tmp/server.pid"
    for _ in $(seq 100); do
        grep -q '^listening on' "$tmp/server.out" && break
        sleep 0.05
    done
    grep -q '^listening on' "$tmp/server.out" || { echo "udp_echo: $server did not start" >&2; cat "$tmp/server.out" >&2; exit 1; }
    taskset -c 1 "$bin/udp_echo_client" --addr 127.0.0.1:$port --clients "$clients" --size "$size" \
        --duration "$((secs - 1))s" --warmup 1s --json >"$tmp/client.json" 2>"$tmp/client.err" &
    cpid=$!
    echo $cpid >"$tmp/client.pid"
    sleep 1.1
    t0=$(awk '{print $1}' /proc/$spid/schedstat)
    perf record -q -e cpu-clock -F 1000 -p $spid -o "$tmp/perf.data" -- sleep "$window" >/dev/null 2>&1
    t1=$(awk '{print $1}' /proc/$spid/schedstat)
    wait $cpid || { echo "udp_echo: the client failed against $which ($clients x $size):" >&2; cat "$tmp/client.err" >&2; }
    : >"$tmp/client.pid"
    kill -INT $spid
    wait $spid 2>/dev/null || true
    : >"$tmp/server.pid"
    perf script -i "$tmp/perf.data" -F ip 2>/dev/null |
        awk -v t0="$t0" -v t1="$t1" -v d="$window" -v f="$tmp/client.json" '
            function field(line, name,   v) {
                if (!match(line, "\"" name "\":[0-9.]+")) return 0
                v = substr(line, RSTART, RLENGTH); sub(/.*:/, "", v); return v
            }
            { if (substr($1, 1, 4) == "ffff" && length($1) == 16) k++; else u++ }
            END {
                getline line < f
                dps = field(line, "dps"); n = dps * d; cpu = (t1 - t0) / 1e3
                if (n <= 0 || u + k == 0) { print "0 0 0 0 0 1"; exit }
                printf "%.4f %.4f %.0f %d %d %d\n", cpu * u / (u + k) / n, cpu / n, dps,
                    field(line, "p99_us"), field(line, "lost"), field(line, "failures")
            }'
}

echo "| clients | size (B) | server | datagrams/s | user µs/dgram | total CPU µs/dgram | p99 µs | lost | dgram/s vs tokio | user CPU vs tokio | total CPU vs tokio | p99 vs tokio |"
echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for cell in $cells; do
    clients=${cell%x*}
    size=${cell#*x}
    : >"$tmp/rows"
    for _ in $(seq "$reps"); do
        r=$(measure ringloop "$clients" "$size")
        p=$(measure plain "$clients" "$size")
        t=$(measure tokio "$clients" "$size")
        echo "$r $p $t" >>"$tmp/rows"
    done
    awk -v c="$clients" -v s="$size" -v extra="$ringloop_args" '
        {
            for (v = 0; v < 3; v++) {
                o = v * 6
                user[v, NR] = $(o + 1); total[v, NR] = $(o + 2); dps[v, NR] = $(o + 3)
                p99[v, NR] = $(o + 4); lost[v] += $(o + 5); fail[v] += $(o + 6)
                ru[v, NR] = $(o + 1) / $13; rt[v, NR] = $(o + 2) / $14
                rd[v, NR] = $(o + 3) / $15; rp[v, NR] = $(o + 4) / ($16 > 0 ? $16 : 1)
            }
            n = NR
        }
        function median(a, v,   i, j, t, b) {
            for (i = 1; i <= n; i++) b[i] = a[v, i]
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
            return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
        }
        END {
            name[0] = "ringloop pooled" (extra != "" ? " " extra : ""); name[1] = "ringloop --plain"; name[2] = "tokio"
            for (v = 0; v < 3; v++) {
                printf "| %d | %d | %s | %.0f | %.3f | %.3f | %d | %d%s |", c, s, name[v], median(dps, v),
                    median(user, v), median(total, v), median(p99, v), lost[v],
                    fail[v] ? " (" fail[v] " FAILED)" : ""
                if (v < 2) printf " %.2f | %.2f | %.2f | %.2f |\n", median(rd, v), median(ru, v), median(rt, v), median(rp, v)
                else printf " — | — | — | — |\n"
            }
        }
    ' "$tmp/rows"
done
