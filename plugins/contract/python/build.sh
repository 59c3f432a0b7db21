#!/usr/bin/env bash
# Builds the Python twin of the `contract` policy: build/plugins/contract-python.wasm.
# Needs python3 (>= 3.10) with venv; installs the pinned componentize-py from PyPI into
# plugins/contract/python/.venv (gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if ! command -v python3 >/dev/null; then
    "$root/scripts/apt-install.sh" python3 python3-venv
fi
venv="$here/.venv"
if [ ! -x "$venv/bin/componentize-py" ] || [ "$here/requirements.txt" -nt "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv" 2>/dev/null || { "$root/scripts/apt-install.sh" python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    touch "$venv/bin/componentize-py"
fi
mkdir -p "$root/build/plugins"
"$venv/bin/componentize-py" -d "$root/wit/policy-0.1.0" -w evaluator componentize \
    -p "$here/app" contract -o "$root/build/plugins/contract-python.wasm" >/dev/null
