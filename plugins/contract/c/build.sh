#!/usr/bin/env bash
# Builds the C twin of the `contract` policy: build/plugins/contract-c.wasm.
# Installs Debian's clang, lld, wasi-libc, the wasm32 compiler runtime and jsmn if
# missing; generates the C bindings from the WIT with tools/componentize-c (built from
# crates.io libraries), compiles with clang for wasm32-wasi (reactor), and adapts the
# core module into a component with wasmtime's WASI reactor adapter.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
"$root/scripts/apt-install.sh" clang lld wasi-libc libclang-rt-dev-wasm32 libjsmn-dev
cd "$root"
cargo build --locked -q -p componentize-c
tool="$root/target/debug/componentize-c"
out="$root/build/contract-c"
rm -rf "$out" && mkdir -p "$out" "$root/build/plugins"
"$tool" bindings wit/policy-0.1.0 evaluator "$out"
cp /usr/include/jsmn.h "$out/"
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -I "$out" -o "$out/contract-core.wasm" \
    "$here/contract.c" "$out/evaluator.c" "$out/evaluator_component_type.o"
"$tool" component "$out/contract-core.wasm" "$root/build/plugins/contract-c.wasm"
