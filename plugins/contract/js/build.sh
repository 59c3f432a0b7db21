#!/usr/bin/env bash
# Builds the JavaScript twin of the `contract` policy: build/plugins/contract-js.wasm.
# Needs node >= 18 and npm (installed from Debian if missing); the pinned npm packages
# (package-lock.json) go into plugins/contract/js/node_modules via `npm ci`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    "$root/scripts/apt-install.sh" nodejs npm
fi
cd "$here"
if [ ! -x node_modules/.bin/componentize-qjs ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p "$root/build/plugins"
# --sync: no component-model async ABI (the host disables it); --stub-wasi: the policy
# needs no WASI, so the component imports none (WASI calls would trap).
node_modules/.bin/componentize-qjs --wit "$root/wit/policy-0.1.0" --world evaluator \
    --js contract.js --sync --stub-wasi -o "$root/build/plugins/contract-js.wasm" >/dev/null
