#!/usr/bin/env bash
# Builds the Rust twin of the `contract` policy: build/plugins/contract-rust.wasm.
# Needs rustup/cargo; installs the wasm32-wasip2 target if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
cargo build --locked -q --target wasm32-wasip2 --profile plugin -p contract-rust
mkdir -p build/plugins
cp target/wasm32-wasip2/plugin/contract_rust.wasm build/plugins/contract-rust.wasm
