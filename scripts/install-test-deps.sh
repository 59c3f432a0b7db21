#!/usr/bin/env bash
# Installs the system tools the test suite needs, if they are missing. Idempotent and
# quick when everything is present (no apt call at all), so CI can run it every time.
#
#   promtool (Debian package `prometheus`): tests/server.rs checks `/metrics` with
#   `promtool check metrics`; openssl; chromium (the console test); redis-server (the
#   shared task store).
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# openssl: tests/signing.rs drives the real openssl binary for the interop path.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# chromium: tests/mcp_gateway.rs drives the operator console in a real headless Chromium
# (tests/console/approve_in_browser.mjs, with playwright-core from tests/mcp).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# redis-server: tests/task_store_redis.rs runs two replicas on one real Redis.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing test dependencies: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends: promtool is all we need, not the server's web assets.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v promtool >/dev/null 2>&1 || { echo "promtool still missing after installing ${missing[*]}" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || { echo "chromium still missing after installing ${missing[*]}" >&2; exit 1; }
command -v redis-server >/dev/null 2>&1 || { echo "redis-server still missing after installing ${missing[*]}" >&2; exit 1; }
