#!/bin/bash
# usage: m.sh ringloop|tokio CONNS SIZE DUR  -> prints req/s, user us/req (perf-sampled), total us/req
set -e
which=$1; conns=$2; size=$3; dur=${4:-5}
B=${BIN:-/work/main/target/release/examples}
if [ $which = ringloop ]; then port=7878; taskset -c 0 $B/echo --addr 127.0.0.1:$port $EXTRA >/dev/null 2>&1 & 
else port=7879; taskset -c 0 $B/echo_tokio --addr 127.0.0.1:$port >/dev/null 2>&1 & fi
spid=$!
sleep 0.3
taskset -c 1 $B/echo_client --addr 127.0.0.1:$port --conns $conns --size $size --duration ${dur}s --warmup 1s --json > /tmp/prof_client.json 2>/dev/null &
cpid=$!
sleep 1
t0=$(awk '{print $1}' /proc/$spid/schedstat)
perf record -q -e cpu-clock -F ${FREQ:-1000} -p $spid -o /tmp/prof_$which.data -- sleep $dur 2>/dev/null >/dev/null
t1=$(awk '{print $1}' /proc/$spid/schedstat)
wait $cpid
kill -INT $spid; wait $spid 2>/dev/null || true
reqs=$(python3 -c "import json;d=json.load(open('/tmp/prof_client.json'));print(d.get('requests_per_sec', d.get('rps', 0)))")
u=$(perf script -i /tmp/prof_$which.data -F ip 2>/dev/null | awk '{ if (length($1) < 16 || substr($1,1,4) != "ffff") u++; else k++ } END {print u+0, k+0}')
python3 - "$reqs" "$t0" "$t1" $u $dur <<PY
import sys
rps=float(sys.argv[1]); t0=int(sys.argv[2]); t1=int(sys.argv[3]); u=int(sys.argv[4]); k=int(sys.argv[5]); dur=float(sys.argv[6])
cpu=(t1-t0)/1e9
req=rps*dur
frac=u/(u+k) if u+k else 0
print(f"{sys.argv[0] if False else ''}rps={rps:.0f} cpu={cpu:.2f}s user_frac={frac:.4f} user_us/req={cpu*frac/req*1e6:.3f} total_us/req={cpu/req*1e6:.3f} samples={u+k}")
PY
