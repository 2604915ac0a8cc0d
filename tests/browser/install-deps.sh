#!/usr/bin/env bash
# Everything the browser end-to-end test needs, idempotently and quietly:
#   1. Debian's Chromium at /usr/bin/chromium (apt-get; CI runs as root),
#   2. node_modules from package-lock.json (npm ci, only when missing or stale),
#   3. the TypeScript client generated from ../../proto (buf, offline) and the page bundle (esbuild).
# Usage: tests/browser/install-deps.sh   (from anywhere; `make browser-deps` calls it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

quiet() { # run "$@", showing its output only when it fails
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "install-deps: failed: $*" >&2
        return 1
    fi
    rm -f "$log"
}

if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: /usr/bin/chromium is missing; as root run:" >&2
        echo "  apt-get update && apt-get install -y --no-install-recommends chromium" >&2
        exit 1
    fi
    echo "install-deps: installing Debian's chromium (apt-get)..."
    quiet apt-get update
    quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

# node_modules is stale when it was installed from another package-lock.json than the current one.
stamp=node_modules/.scifer-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    # No install scripts: the buf and esbuild binaries come as platform packages and work without.
    quiet npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
fi

# Code generation and the bundle (about a second, offline); run.mjs redoes them before each run.
node build.mjs
