#!/bin/sh
# Installs dependencies, builds QUIC-S, and runs its main job on this machine: a qis server
# and two qic clients (each with its own XDG directories, as two machines would have) syncing
# the folders demo/a and demo/b. It writes a file into demo/a, waits for it in demo/b, then
# keeps everything running until Ctrl-C so you can try it: change files in one folder and
# watch them appear in the other. QS_RUN_ONCE=1 stops after the first sync (for scripts).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=${QS_JOBS:-$(nproc)}

./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs" >/dev/null
qis=$top/build/src/server/qis
qic=$top/build/src/client/qic

demo=$top/demo
rm -rf "$demo" # a fresh demo each run (the server's port is new every time)
mkdir -p "$demo/a" "$demo/b"
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

password=demo-server-password
"$qis" run --addr 127.0.0.1 --quic-port 0 --port 0 --data "$demo/server" --password "$password" \
	>"$demo/server.log" 2>&1 &
pids="$pids $!"
i=0
until grep -q 'connect a client' "$demo/server.log" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 200 ] || { cat "$demo/server.log"; exit 1; }; sleep 0.05
done
port=$(sed -n 's/.*--port \([0-9]*\) .*/\1/p' "$demo/server.log" | head -n 1)
fpr=$(sed -n 's/.*--fingerprint \([0-9a-f]*\).*/\1/p' "$demo/server.log" | head -n 1)

client() { # name, then qic arguments
	name=$1; shift
	XDG_CONFIG_HOME=$demo/$name/config XDG_DATA_HOME=$demo/$name/data "$qic" "$@"
}
for c in client-a client-b; do
	XDG_CONFIG_HOME=$demo/$c/config XDG_DATA_HOME=$demo/$c/data "$qic" start --rest-port 0 \
		>"$demo/$c.log" 2>&1 &
	pids="$pids $!"
	i=0
	until [ -f "$demo/$c/config/quics/qic.api" ]; do
		i=$((i + 1)); [ $i -lt 200 ] || { cat "$demo/$c.log"; exit 1; }; sleep 0.05
	done
	client "$c" connect server --host 127.0.0.1 --port "$port" --password "$password" \
		--fingerprint "$fpr" >/dev/null
done
client client-a connect root --local "$demo/a" --name demo --password demo-root >/dev/null
client client-b connect root --remote demo --dir "$demo/b" --password demo-root >/dev/null

stamp=$(date +%s%N)
echo "hello from client A at $(date)" >"$demo/a/hello-$stamp.txt"
i=0
until [ -f "$demo/b/hello-$stamp.txt" ]; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "not synced; logs in $demo"; exit 1; }; sleep 0.05
done
echo "synced: demo/a/hello-$stamp.txt appeared in demo/b after $((i * 50)) ms or less"
echo
echo "QUIC-S is running: server on 127.0.0.1:$port (UDP), fingerprint $fpr"
echo "  folders: $demo/a (client A) and $demo/b (client B); logs in $demo/*.log"
echo "  status:  XDG_CONFIG_HOME=$demo/client-a/config $qic sync status"
echo "  another machine: qic start, then"
echo "           qic connect server --host <this host's address> --port $port \\"
echo "               --password $password --fingerprint $fpr"
echo "           qic connect root --remote demo --dir ~/demo --password demo-root"
echo "  (this demo listens on 127.0.0.1 only; for other machines run qis with --addr 0.0.0.0)"
[ "${QS_RUN_ONCE:-0}" = 1 ] && exit 0
echo "Press Ctrl-C to stop."
wait
