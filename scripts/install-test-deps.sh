#!/usr/bin/env bash
# Installs the system tools the test suite needs, if they are missing. Idempotent and
# quick when everything is present (no apt call at all), so CI can run it every time.
#
#   promtool (Debian package `prometheus`): tests/server.rs checks `/metrics` with
#   `promtool check metrics`.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# openssl: tests/signing.rs drives the real openssl binary for the interop path.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

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
