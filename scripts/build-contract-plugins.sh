#!/usr/bin/env bash
# Builds the four language twins of the `contract` conformance policy (Rust, JavaScript,
# Python, C) into build/plugins/contract-<lang>.wasm. Each twin's build.sh installs its
# own toolchain from the package registries when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
for lang in rust js python c; do
    started=$(date +%s)
    plugins/contract/$lang/build.sh
    echo "built: contract-$lang.wasm ($(stat -c %s build/plugins/contract-$lang.wasm) bytes, $(($(date +%s) - started)) s)" >&2
done
