#!/usr/bin/env bash
# Installs the named Debian packages that are not installed yet (apt-get, with sudo when
# not root). Used by the build scripts of the C, JavaScript and Python policy twins.
set -euo pipefail
missing=()
for pkg in "$@"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "installing Debian packages: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
