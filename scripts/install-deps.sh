#!/bin/sh
# Installs every Debian package QUIC-S needs to build, test and benchmark (DESIGN.md section 7).
# Idempotent: quiet when everything is present; installs only what is missing.
set -eu

PACKAGES="
build-essential cmake pkg-config git
clang libclang-rt-14-dev clang-format
libgnutls28-dev gnutls-bin
libngtcp2-dev libngtcp2-crypto-gnutls-dev
ngtcp2-server ngtcp2-client
libuv1-dev
libsqlite3-dev
libzstd-dev
libprotobuf-c-dev protobuf-c-compiler
libmicrohttpd-dev
libjansson-dev
libcurl4-gnutls-dev
libargon2-dev
libcmocka-dev
python3 procps iproute2 coreutils
"

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
		echo "install-deps: these packages are missing:$missing" >&2
		echo "install-deps: run this script as root (or install sudo) to install them." >&2
		exit 1
	fi
else
	SUDO=
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
