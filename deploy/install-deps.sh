#!/bin/sh
# Install what dealpush needs to build and run (no argument: `make run`), or also to
# test, benchmark and package it (--test: `make test`, `make bench`, CI), and nothing
# it already has. --list prints the packages it would check and exits.
# Debian bookworm packages only; runs as root or through sudo; idempotent.
# It never starts or relies on the system redis service: the project starts its own
# redis-server on a private port (see tests/harness.sh).
set -eu

PKGS="gcc make pkg-config libc6-dev ca-certificates
libevent-dev libhiredis-dev libcjson-dev libcurl4-openssl-dev libssl-dev
redis-server redis-tools tzdata procps libjs-chart.js"
TEST_PKGS="libcmocka-dev valgrind wrk clang libclang-rt-14-dev
prometheus
dpkg-dev debhelper fakeroot lintian systemd man-db adduser curl
nginx openssl chromium"
# prometheus is here for its promtool (the /metrics test checks the exposition
# format with it); its server is never used.
# dpkg-dev, debhelper, fakeroot and lintian build and check the Debian package
# (make deb); systemd for systemd-analyze verify of its units (systemd need not
# run); man-db checks the man pages; adduser is the package's own dependency, which
# dpkg -i in the package test does not fetch. nginx and openssl check the TLS front
# example (nginx -t with a throwaway certificate); its server is never used.
# chromium runs the console's browser tests (tests/browser), driven by playwright-core
# from npm; node and npm come from Debian when the machine has no node of its own.

# libjs-chart.js is the console's charting library, embedded at build time.

case "${1:-}" in
"") ;;
--test) PKGS="$PKGS $TEST_PKGS" ;;
--list) echo $PKGS; exit 0 ;;
--list-test) echo $PKGS $TEST_PKGS; exit 0 ;;
*) echo "usage: install-deps.sh [--test | --list | --list-test]" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

# Node: any node and npm on the PATH will do (a machine may have its own, whose npm
# Debian's npm package would conflict with); else Debian's.
case " $PKGS " in
*" chromium "*)
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm" ;;
esac

if [ -z "$missing" ]; then
	echo "install-deps: everything is installed"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: missing:$missing; run as root or install sudo" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -q --no-install-recommends $missing

# The packages start a system redis on 6379, a prometheus server on all interfaces
# and nginx on port 80; we use none of them (tests start their own servers on
# 127.0.0.1), so they are stopped and disabled. Best effort: containers have no
# systemd, and there the init script is asked instead.
if command -v systemctl >/dev/null 2>&1; then
	$SUDO systemctl disable --now redis-server prometheus nginx >/dev/null 2>&1 || true
fi
if [ ! -d /run/systemd/system ] && [ -x /etc/init.d/nginx ]; then
	$SUDO /etc/init.d/nginx stop >/dev/null 2>&1 || true
fi
echo "install-deps: done"
