#!/bin/sh
# Install the Debian 12 packages qaio needs to build and test, if missing.
# Usage: scripts/install-deps.sh [extra-package ...]
# Called by make; a no-op when everything is present.
set -e

# spin model-checks tests/model/ during `make check`.
pkgs="meson ninja-build pkg-config gcc libglib2.0-dev liburing-dev libaio-dev spin"
pkgs="$pkgs $*"

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: need root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# apt-get update only once per boot of a machine: it is slow and flaky.
stamp=/tmp/.qaio-apt-updated
if [ ! -e "$stamp" ]; then
    $SUDO apt-get update -qq && touch "$stamp"
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
