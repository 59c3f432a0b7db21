#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, builds the plugin components,
# then runs formatting, lints and every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/install-test-deps.sh ]; then
    scripts/install-test-deps.sh
fi
# The MCP gateway's tests drive real SDK clients and servers: npm packages under
# tests/mcp/node_modules and a Python venv under tests/mcp/.venv.
scripts/install-mcp-test-deps.sh
# Signed with openssl (installed above): see build-plugins.sh for why.
ARBITER_SIGN_WITH_OPENSSL=1 scripts/build-plugins.sh

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --locked --workspace --all-targets -- -D warnings
# The minimal embedder build (no server, no CLI) must keep compiling on its own.
cargo clippy --locked -p arbiter-host --lib --no-default-features -- -D warnings
echo "== cargo test" >&2
cargo test --locked --workspace
