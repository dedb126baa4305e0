#!/bin/bash
# hyper's HTTP/1.1 server on ringloop (examples/hyper_server.rs) against the same server on
# tokio's current_thread runtime (examples/hyper_server_tokio.rs), loaded by wrk.
#
#   bash benches/hyper_http.sh [REPS] [SECONDS]        # defaults: 3 repetitions, 5 s per run
#
# Installs wrk with apt-get if it is missing, builds both examples in release, then for each
# connection count C in 1, 16, 100 (CONNS="..." overrides) and each repetition runs the
# ringloop server, then the tokio server (interleaved, so both see the same machine noise),
# each pinned to CPU 0, while `taskset -c 1 wrk -t1 -cC -dSECONDSs --latency` sends keep-alive
# `GET /` (20-byte body on both) to it from CPU 1. Per run it records:
#   - requests/s and the request count, from wrk;
#   - p99 latency, from wrk's `--latency` distribution;
#   - the server's CPU time per request, user and system separately: fields 14 (utime) and
#     15 (stime) of /proc/PID/stat, all threads of the server, read just before and just
#     after the wrk run, divided by wrk's request count. Those fields count clock ticks
#     (getconf CLK_TCK, 100 here: 10 ms), so one run's figure is good to about
#     +-1 tick / requests (+-0.04 us/request at 250k requests); and the server's CPU busy
#     share over that window (100 % = CPU 0 saturated, so req/s is the server's limit);
#   - wrk's errors (socket connect/read/write/timeout and non-2xx/3xx responses): they
#     must be 0, and the table says how many there were.
# It prints one Markdown table per C: the median over the repetitions of each server, and the
# median of the per-repetition ratios ringloop/tokio and their range (req/s: above 1 is ringloop
# faster; p99 and CPU: below 1 is ringloop better). wrk's raw output and the servers' stdout/stderr
# are kept under target/hyper_http/, and one line per run goes to stderr. Servers bind 127.0.0.1 only, on PORT_RINGLOOP (18081)
# and PORT_TOKIO (18082); each is stopped by its pid with SIGINT (it drains and prints
# `served N connections`), then SIGKILL if it is still alive 5 s later.
set -euo pipefail

reps=${1:-3}
secs=${2:-5}
conns_list=${CONNS:-"1 16 100"}
port_ringloop=${PORT_RINGLOOP:-18081}
port_tokio=${PORT_TOKIO:-18082}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/examples

if ! command -v wrk >/dev/null; then
    echo "hyper_http: installing wrk" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q && apt-get install -y -q wrk
    else
        sudo apt-get update -q && sudo apt-get install -y -q wrk
    fi
fi
(cd "$root" && cargo build --release --features hyper --example hyper_server --example hyper_server_tokio)

tick_us=$((1000000 / $(getconf CLK_TCK)))
out=$root/target/hyper_http/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
# C rep server req_per_s p99_us requests user_ticks sys_ticks wrk_errors window_us
rows=$out/rows

# cpu_ticks PID -> "utime stime" (fields 14 and 15; the comm field may hold spaces, so count
# from after its closing parenthesis, where field 3 starts).
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'
}

# A server still running when the script exits (an error, Ctrl-C) is stopped too.
server_pid=
trap '[ -n "$server_pid" ] && stop "$server_pid"' EXIT

# stop PID: SIGINT, then SIGKILL if it has not exited 5 s later.
stop() {
    local pid=$1
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "hyper_http: pid $pid ignored SIGINT for 5 s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# run SERVER C REP: one measured wrk run against a fresh server; appends a line to $rows.
run() {
    local which=$1 c=$2 rep=$3 server port spid before after t0 t1 log
    case $which in
    ringloop) server=hyper_server port=$port_ringloop ;;
    tokio) server=hyper_server_tokio port=$port_tokio ;;
    esac
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "hyper_http: something already listens on 127.0.0.1:$port (PORT_${which^^}=...)" >&2
        exit 1
    fi
    log=$out/c$c-rep$rep-$which
    # taskset execs the server, so $! is the server's own pid.
    taskset -c 0 "$bin/$server" "127.0.0.1:$port" >"$log.server.out" 2>"$log.server.err" &
    spid=$!
    server_pid=$spid
    for _ in $(seq 100); do
        grep -q '^listening on' "$log.server.out" 2>/dev/null && break
        kill -0 "$spid" 2>/dev/null || { echo "hyper_http: $server exited at start" >&2; exit 1; }
        sleep 0.05
    done
    grep -q '^listening on' "$log.server.out" || { echo "hyper_http: $server did not start" >&2; exit 1; }
    before=$(cpu_ticks "$spid")
    t0=$(date +%s%N)
    taskset -c 1 wrk -t1 -c"$c" -d"${secs}s" --latency "http://127.0.0.1:$port/" >"$log.wrk"
    after=$(cpu_ticks "$spid")
    t1=$(date +%s%N)
    stop "$spid"
    server_pid=
    awk -v c="$c" -v rep="$rep" -v which="$which" -v before="$before" -v after="$after" -v window_ns=$((t1 - t0)) '
        function us(v) {
            if (v ~ /us$/) return v + 0
            if (v ~ /ms$/) return v * 1000
            if (v ~ /m$/) return v * 60e6
            if (v ~ /s$/) return v * 1e6
            return -1
        }
        /^ +99%/ { p99 = us($2) }
        / requests in / { requests = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(",", ""); errors += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { errors += $NF }
        END {
            split(before, b, " "); split(after, a, " ")
            if (requests == 0 || p99 == "") { print "hyper_http: cannot parse wrk output" > "/dev/stderr"; exit 1 }
            print c, rep, which, rps, p99, requests, a[1] - b[1], a[2] - b[2], errors + 0, window_ns / 1e3
        }
    ' "$log.wrk" >>"$rows"
    tail -n 1 "$rows" | awk -v t="$tick_us" -v served="$(grep -h '^served' "$log.server.out" || echo 'served ? connections')" \
        -v errs="$(wc -l <"$log.server.err")" '{
        printf "c=%s rep=%s %-8s %9.0f req/s  p99 %8.1f us  user %.3f sys %.3f us/req  wrk errors %d  (%s, %d stderr lines)\n",
            $1, $2, $3, $4, $5, $7 * t / $6, $8 * t / $6, $9, served, errs
    }' >&2
}

echo "hyper_http: $(date -u), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $reps x ${secs}s, raw output in $out" >&2
: >"$rows"
for c in $conns_list; do
    for rep in $(seq "$reps"); do
        run ringloop "$c" "$rep"
        run tokio "$c" "$rep"
    done
done

for c in $conns_list; do
    echo
    echo "### $c connection(s): \`taskset -c 1 wrk -t1 -c$c -d${secs}s --latency\`, servers on CPU 0, $reps repetitions"
    echo
    awk -v c="$c" -v t="$tick_us" -v reps="$reps" '
        $1 != c { next }
        {
            k = ($3 == "ringloop") ? "r" : "t"; i = $2
            rps[k, i] = $4; p99[k, i] = $5
            user[k, i] = $7 * t / $6; sys[k, i] = $8 * t / $6; tot[k, i] = ($7 + $8) * t / $6
            busy[k, i] = ($7 + $8) * t * 100 / $10
            errors[k] += $9
        }
        function median(a, k,   i, j, x, b) {
            for (i = 1; i <= reps; i++) b[i] = a[k, i]
            for (i = 1; i <= reps; i++) for (j = i + 1; j <= reps; j++) if (b[j] < b[i]) { x = b[i]; b[i] = b[j]; b[j] = x }
            return reps % 2 ? b[(reps + 1) / 2] : (b[reps / 2] + b[reps / 2 + 1]) / 2
        }
        # The median of the per-repetition ratios ringloop/tokio, and their range.
        function ratio(a,   i, q, lo, hi) {
            for (i = 1; i <= reps; i++) {
                if (a["t", i] == 0) return "n/a | n/a"
                q["x", i] = a["r", i] / a["t", i]
                if (i == 1 || q["x", i] < lo) lo = q["x", i]
                if (i == 1 || q["x", i] > hi) hi = q["x", i]
            }
            return sprintf("%.2f | %.2f–%.2f", median(q, "x"), lo, hi)
        }
        function row(name, a, fmt) {
            printf "| %s | " fmt " | " fmt " | %s |\n", name, median(a, "r"), median(a, "t"), ratio(a)
        }
        END {
            print "| metric (median of " reps ") | ringloop | tokio current_thread | ringloop / tokio (median of per-repetition ratios) | ratio range |"
            print "| --- | ---: | ---: | ---: | ---: |"
            row("requests/s (higher is better)", rps, "%.0f")
            row("p99 latency, µs (lower is better)", p99, "%.1f")
            row("server user CPU, µs/request (10 ms ticks)", user, "%.3f")
            row("server system CPU, µs/request (10 ms ticks)", sys, "%.3f")
            row("server user+system CPU, µs/request", tot, "%.3f")
            row("server CPU busy, % of CPU 0 between the two reads", busy, "%.0f")
            printf "| wrk errors (socket + non-2xx, sum of %d runs) | %d | %d | | |\n", reps, errors["r"], errors["t"]
        }
    ' "$rows"
done
