#!/usr/bin/env bash
# Builds the reference plugins (and the adversarial test fixture) as WebAssembly
# components for wasm32-wasip2 and copies them to build/plugins/.
# Installs the wasm32-wasip2 Rust target if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 Rust target" >&2
    rustup target add wasm32-wasip2
fi

plugins=(intent scope sensitivity misbehave)
args=()
for p in "${plugins[@]}"; do args+=(-p "$p"); done
cargo build --locked --target wasm32-wasip2 --profile plugin "${args[@]}"

mkdir -p build/plugins
for p in "${plugins[@]}"; do
    cp "target/wasm32-wasip2/plugin/$p.wasm" "build/plugins/$p.wasm"
done
scripts/build-contract-plugins.sh
echo "built: $(cd build/plugins && ls *.wasm | tr '\n' ' ')" >&2
