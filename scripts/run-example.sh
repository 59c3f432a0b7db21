#!/usr/bin/env bash
# The quick start: builds the reference plugins and the `arbiter` CLI, then decides each
# example action with the three plugins and prints a readable summary of every decision.
set -euo pipefail
cd "$(dirname "$0")/.."

ARBITER_REFERENCE_PLUGINS_ONLY=1 scripts/build-plugins.sh
cargo build --locked -q -p arbiter-host --bin arbiter
for action in examples/actions/*.json; do
    echo "=== $action"
    status=0
    target/debug/arbiter eval --config examples/arbiter.toml "$action" --explain || status=$?
    echo "(exit status $status: 0 allow, 3 deny, 4 step-up, 1 error)"
    echo
done
