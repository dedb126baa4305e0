#!/bin/bash
# User CPU per request of the two echo servers, measured finer than /proc's 10 ms ticks.
#
#   cargo build --release --examples && bash benches/echo_user_cpu.sh [REPS] [SECONDS]
#
# For each cell (conns x size) and each repetition it runs the ringloop server, then the tokio
# server, pinned to CPU 0 with the load client on CPU 1 (as `cargo bench --bench echo`). The
# server's on-CPU time comes from /proc/PID/schedstat (nanoseconds); its user share from
# `perf record -e cpu-clock -F 1000` samples over the measured window (kernel addresses start
# with ffff). user µs/request = on-CPU time x user share / requests. The ratio is taken per
# repetition (the servers run back to back) and the median printed. `MONOIO=1` adds monoio's
# server (`examples/echo_monoio.rs`, same logic on monoio's io_uring runtime) after tokio's in
# each repetition, and three columns against it. Needs `perf`
# (linux-perf) and permission to sample the server (root, or perf_event_paranoid <= 1).
set -euo pipefail

reps=${1:-3}
secs=${2:-6}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/examples}
cells=${CELLS:-"1x64 16x64 16x1024 16x16384 100x64 100x1024 100x16384 1000x64 1000x1024"}

command -v perf >/dev/null || { echo "echo_user_cpu: needs perf (apt-get install linux-perf)"; exit 1; }
servers="echo echo_tokio echo_client"
[ "${MONOIO:-0}" = 1 ] && servers="$servers echo_monoio"
for b in $servers; do
    [ -x "$bin/$b" ] || { echo "echo_user_cpu: build first: cargo build --release --examples"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure SERVER CONNS SIZE -> "user_us_per_req total_us_per_req req_per_s"
measure() {
    local which=$1 conns=$2 size=$3 port server spid cpid t0 t1
    case $which in
    ringloop) port=7878 server=echo ;;
    tokio) port=7879 server=echo_tokio ;;
    monoio) port=7880 server=echo_monoio ;;
    esac
    taskset -c 0 "$bin/$server" --addr 127.0.0.1:$port >/dev/null 2>&1 &
    spid=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
    taskset -c 1 "$bin/echo_client" --addr 127.0.0.1:$port --conns "$conns" --size "$size" \
        --duration "${secs}s" --warmup 1s --json >"$tmp/client.json" 2>/dev/null &
    cpid=$!
    sleep 1.2
    t0=$(awk '{print $1}' /proc/$spid/schedstat)
    perf record -q -e cpu-clock -F 1000 -p $spid -o "$tmp/perf.data" -- sleep $((secs - 1)) >/dev/null 2>&1
    t1=$(awk '{print $1}' /proc/$spid/schedstat)
    wait $cpid
    kill -INT $spid
    wait $spid 2>/dev/null || true
    perf script -i "$tmp/perf.data" -F ip 2>/dev/null |
        awk -v t0="$t0" -v t1="$t1" -v d=$((secs - 1)) -v f="$tmp/client.json" '
            { if (substr($1, 1, 4) == "ffff" && length($1) == 16) k++; else u++ }
            END {
                getline line < f
                match(line, /"rps":[0-9.]+/); rps = substr(line, RSTART + 6, RLENGTH - 6)
                req = rps * d; cpu = (t1 - t0) / 1e3
                printf "%.4f %.4f %.0f\n", cpu * u / (u + k) / req, cpu / req, rps
            }'
}

if [ "${MONOIO:-0}" = 1 ]; then
    echo "| conns | size (B) | user µs/req ringloop | user µs/req tokio | user ratio (median of $reps) | total CPU ratio (median) | req/s ratio (median) | user µs/req monoio | user ratio vs monoio | total CPU ratio vs monoio | req/s ratio vs monoio |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
else
    echo "| conns | size (B) | user µs/req ringloop | user µs/req tokio | user ratio (median of $reps) | total CPU ratio (median) | req/s ratio (median) |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
fi
for cell in $cells; do
    conns=${cell%x*}
    size=${cell#*x}
    : >"$tmp/rows"
    for _ in $(seq "$reps"); do
        r=$(measure ringloop "$conns" "$size")
        t=$(measure tokio "$conns" "$size")
        m="0 0 0"
        [ "${MONOIO:-0}" = 1 ] && m=$(measure monoio "$conns" "$size")
        echo "$r $t $m" >>"$tmp/rows"
    done
    awk -v c="$conns" -v s="$size" -v monoio="${MONOIO:-0}" '
        {
            ru[NR] = $1; tu[NR] = $4; ur[NR] = $1 / $4; tr[NR] = $2 / $5; qr[NR] = $3 / $6
            if (monoio == 1) { mu[NR] = $7; mur[NR] = $1 / $7; mtr[NR] = $2 / $8; mqr[NR] = $3 / $9 }
            n = NR
        }
        function median(a,   i, j, t, b) {
            for (i = 1; i <= n; i++) b[i] = a[i]
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
            return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
        }
        END {
            printf "| %d | %d | %.3f | %.3f | %.2f | %.2f | %.2f |", c, s, median(ru), median(tu), median(ur), median(tr), median(qr)
            if (monoio == 1) printf " %.3f | %.2f | %.2f | %.2f |", median(mu), median(mur), median(mtr), median(mqr)
            printf "\n"
        }
    ' "$tmp/rows"
done
