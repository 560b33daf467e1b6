#!/bin/sh
# Transport benchmark (issue 3): QUIC-S bulk transfer and small-transaction latency over
# loopback, with Debian's ngtcp2 example programs measured in the same run as the anchor.
#   bulk:    one connection, one transaction, QS_BENCH_MIB (default 1024) MiB download, MB/s,
#            median of QS_BENCH_RUNS (default 3) runs
#   latency: 10,000 sequential request/response transactions on one connection, p50/p99
# Usage: bench/quic_bench.sh [build-dir]     (build first: cmake --build build)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
mib=${QS_BENCH_MIB:-1024}
runs=${QS_BENCH_RUNS:-3}
peer=$build/tests/net/qs-quic-peer
tmp=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM

"$peer" server --addr 127.0.0.1 --port 0 --cert-dir "$tmp/certs" --port-file "$tmp/port" \
	>"$tmp/server.log" 2>&1 &
srv=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
read -r port fpr <"$tmp/port"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

rates=""
for r in $(seq "$runs"); do
	out=$("$peer" client --port "$port" --fingerprint "$fpr" --scenario download \
		--bytes "${mib}M" 2>/dev/null | grep 'download_bytes=')
	rate=$(echo "$out" | sed 's/.*mbps=\([0-9.]*\).*/\1/')
	echo "quics run $r: $rate MB/s"
	rates="$rates $rate"
done
quics=$(echo "$rates" | tr ' ' '\n' | grep . | median)
echo "quics_mbps=$quics"

lat=$("$peer" client --port "$port" --fingerprint "$fpr" --scenario latency -n 10000 \
	2>/dev/null | grep latency_n=)
echo "quics_latency $lat"

if [ -x bench/quic_reference.sh ]; then
	ref=$(QS_BENCH_MIB=$mib QS_BENCH_RUNS=$runs bench/quic_reference.sh | grep '^reference_mbps=' |
		cut -d= -f2)
	echo "reference_mbps=$ref"
	echo "ratio=$(echo "$quics $ref" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }')"
fi
