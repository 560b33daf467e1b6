#!/bin/sh
# The reference the QUIC-S transport must beat: Debian's ngtcp2 example programs
# (gtlsserver from ngtcp2-server, gtlsclient from ngtcp2-client, both on GnuTLS) downloading
# one file over HTTP/3 on 127.0.0.1. Prints one line per run and, last, the median as
# "reference_mbps=N" (N in MB/s, 1 MB = 10^6 bytes, whole number). See docs/bench.md.
#
# Environment:
#   QS_BENCH_MIB          file size in MiB (default 1024)
#   QS_BENCH_RUNS         number of downloads; the median is reported (default 3)
#   QS_BENCH_SERVER_ARGS  extra gtlsserver options (default none), e.g. "--cc=bbr"
#   QS_BENCH_CLIENT_ARGS  extra gtlsclient options (default none)
#   TMPDIR                where the file, the download and the key go (default /tmp)
set -eu

mib=${QS_BENCH_MIB:-1024}
runs=${QS_BENCH_RUNS:-3}
server_args=${QS_BENCH_SERVER_ARGS:-}
client_args=${QS_BENCH_CLIENT_ARGS:-}

die() {
	echo "quic_reference: $*" >&2
	exit 1
}

case $mib in '' | *[!0-9]*) die "QS_BENCH_MIB must be a whole number of MiB, not '$mib'" ;; esac
case $runs in '' | *[!0-9]*) die "QS_BENCH_RUNS must be a whole number, not '$runs'" ;; esac
if [ "$mib" -lt 1 ] || [ "$mib" -gt 65536 ]; then die "QS_BENCH_MIB must be in [1, 65536]"; fi
if [ "$runs" -lt 1 ] || [ "$runs" -gt 100 ]; then die "QS_BENCH_RUNS must be in [1, 100]"; fi

find_tool() {
	command -v "$1" 2>/dev/null || { [ -x "$2" ] && echo "$2"; } || true
}
server=$(find_tool gtlsserver /usr/sbin/gtlsserver)
client=$(find_tool gtlsclient /usr/bin/gtlsclient)
[ -n "$server" ] || die "gtlsserver not found (Debian package ngtcp2-server)"
[ -n "$client" ] || die "gtlsclient not found (Debian package ngtcp2-client)"
command -v python3 >/dev/null || die "python3 is needed to find a free UDP port"

work=$(mktemp -d "${TMPDIR:-/tmp}/qs-quic-ref.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A throwaway self-signed certificate for 127.0.0.1 (the client does not verify it).
key=$work/key.pem
cert=$work/cert.pem
if command -v certtool >/dev/null; then
	printf 'cn = localhost\nip_address = 127.0.0.1\nexpiration_days = 1\ntls_www_server\nsigning_key\n' \
		>"$work/cert.tmpl"
	certtool --generate-privkey --key-type=ecdsa --outfile "$key" >/dev/null 2>&1
	certtool --generate-self-signed --load-privkey "$key" --template "$work/cert.tmpl" \
		--outfile "$cert" >/dev/null 2>&1
elif command -v openssl >/dev/null; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=localhost -keyout "$key" -out "$cert" >/dev/null 2>&1
else
	die "neither certtool (gnutls-bin) nor openssl is installed"
fi
if [ ! -s "$key" ] || [ ! -s "$cert" ]; then die "could not make a certificate"; fi

mkdir "$work/htdocs" "$work/download"
# Incompressible content, though QUIC does not compress: the same bytes as any file.
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$work/htdocs/file" ||
	die "could not write $mib MiB under $work"
bytes=$(wc -c <"$work/htdocs/file")

port=$(python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')

# shellcheck disable=SC2086 # the extra arguments are meant to split
"$server" --quiet --htdocs="$work/htdocs" $server_args 127.0.0.1 "$port" "$key" "$cert" \
	>"$work/server.log" 2>&1 &
server_pid=$!
# Wait until the server has bound its port (or died: a port race, bad arguments).
tries=0
until ss -Hlun "sport = :$port" 2>/dev/null | grep -q .; do
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "gtlsserver exited"; }
	tries=$((tries + 1))
	[ "$tries" -le 200 ] || die "gtlsserver did not bind 127.0.0.1:$port within 10 s"
	sleep 0.05
done

now_ns() { date +%s%N; }
# CPU time in clock ticks: the server's own, and that of this shell's waited-for children
# (the client). Fields after "pid (comm) ": $12 utime, $13 stime, $14 cutime, $15 cstime.
server_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$server_pid/stat"; }
children_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat"; }
hz=$(getconf CLK_TCK)

version=$(dpkg-query -W -f '${Version}' ngtcp2-client 2>/dev/null || echo unknown)
echo "quic_reference: gtlsserver/gtlsclient (ngtcp2 $version), $mib MiB over 127.0.0.1:$port, $runs runs, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

results=
cpu_results=
i=1
while [ "$i" -le "$runs" ]; do
	rm -f "$work/download/file"
	server_before=$(server_ticks)
	client_before=$(children_ticks)
	start=$(now_ns)
	# shellcheck disable=SC2086
	if ! "$client" --quiet --exit-on-all-streams-close --download="$work/download" $client_args \
		127.0.0.1 "$port" "https://127.0.0.1:$port/file" >"$work/client.log" 2>&1; then
		tail -n 20 "$work/client.log" >&2
		die "run $i: gtlsclient failed"
	fi
	end=$(now_ns)
	client_cpu=$(($(children_ticks) - client_before))
	server_cpu=$(($(server_ticks) - server_before))
	# A download that is short or different does not count.
	cmp -s "$work/htdocs/file" "$work/download/file" ||
		die "run $i: the downloaded file differs from the served one"
	line=$(awk -v b="$bytes" -v ns="$((end - start))" -v c="$client_cpu" -v sv="$server_cpu" \
		-v hz="$hz" 'BEGIN {
		s = ns / 1e9
		busiest = (c > sv ? c : sv) / hz
		bound = (busiest > 0) ? b / busiest / 1e6 : 0
		printf "%.3f %.1f %.1f %.2f %.2f %.1f", s, b / s / 1e6, b / s / 1048576,
			c / hz, sv / hz, bound }')
	# shellcheck disable=SC2086
	set -- $line
	echo "run $i: $1 s, $2 MB/s ($3 MiB/s); CPU client $4 s, server $5 s; CPU-bound $6 MB/s"
	results="$results $2"
	cpu_results="$cpu_results $6"
	i=$((i + 1))
done

median() {
	echo "$1" | tr ' ' '\n' | grep . | sort -n | awk '
		{ v[NR] = $1 }
		END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f", m }'
}
# What the pair would do with a core each and nothing else running: bytes over the CPU
# time of the busier process. Shown because this machine is shared; not the figure to beat.
echo "reference_cpu_bound_mbps=$(median "$cpu_results")"
echo "reference_mbps=$(median "$results")"
