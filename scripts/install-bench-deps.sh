#!/bin/sh
# Installs what bench/run compares QUIC-S against: Syncthing and rsync (Debian packages).
# Not needed to build or test QUIC-S, so scripts/install-deps.sh leaves them out.
# Idempotent: quiet when everything is present; installs only what is missing.
set -eu

PACKAGES="syncthing rsync iproute2 util-linux python3"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-bench-deps: these packages are missing:$missing" >&2
		echo "install-bench-deps: run this script as root (or install sudo) to install them." >&2
		exit 1
	fi
else
	SUDO=
fi

echo "install-bench-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-bench-deps: done"
