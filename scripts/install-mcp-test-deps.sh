#!/usr/bin/env bash
# Installs what the MCP gateway tests drive (tests/mcp/README.md):
#   - npm packages pinned in tests/mcp/package.json + package-lock.json, into
#     tests/mcp/node_modules (`npm ci`): @modelcontextprotocol/sdk, /client,
#     /server-everything, /server-filesystem and zod;
#   - a Python venv at tests/mcp/.venv with tests/mcp/requirements.txt (mcp==2.3.0).
# Node.js, npm and python3 (+ venv) come from Debian via scripts/apt-install.sh, only if
# missing. Idempotent and quick when everything is in place: each half compares a stamp
# (hash of its lock/requirements file and the runtime's version) and is skipped when it
# matches. Set MCP_DEPS_FORCE=1 to reinstall anyway.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/mcp"
force="${MCP_DEPS_FORCE:-0}"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# The Python interpreter for the venv: python3.11 (what the pins were resolved on), else
# python3 / python3.12, the first that is >= 3.10 (mcp 2.3.0 requires it) and has venv.
pick_python() {
    local c
    for c in python3.11 python3 python3.12; do
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

node_ok() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }

# --- stamps: what an installed half looks like --------------------------------------------
npm_stamp_want() {
    local lock="$dir/package-lock.json"
    [ -f "$lock" ] || lock="$dir/package.json"
    echo "node-$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none) $(hash_of "$dir/package.json" "$lock")"
}
npm_done() {
    [ "$force" = 1 ] && return 1
    node_ok && [ -f "$dir/package-lock.json" ] && [ -f "$dir/node_modules/.arbiter-stamp" ] &&
        [ "$(cat "$dir/node_modules/.arbiter-stamp")" = "$(npm_stamp_want)" ]
}
py_stamp_want() {
    # The venv's own interpreter version, so a venv whose base interpreter vanished or
    # changed is rebuilt.
    echo "$("$dir/.venv/bin/python" -c 'import sys; print("py-%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || echo none) $(hash_of "$dir/requirements.txt")"
}
py_done() {
    [ "$force" = 1 ] && return 1
    [ -x "$dir/.venv/bin/python" ] && [ -f "$dir/.venv/.arbiter-stamp" ] &&
        [ "$(cat "$dir/.venv/.arbiter-stamp")" = "$(py_stamp_want)" ]
}

if npm_done && py_done; then
    exit 0
fi

# --- system packages, only if missing ---------------------------------------------------
need_apt=0
node_ok || need_apt=1
pick_python >/dev/null || need_apt=1
if [ "$need_apt" = 1 ]; then
    "$root/scripts/apt-install.sh" nodejs npm python3 python3-venv
fi
node_ok || { echo "node/npm still missing after apt-install" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    # @modelcontextprotocol/client 2.x declares node >= 20; the v1 SDK and the servers run on 18.
    echo "warning: node $(node --version) is older than 20, which @modelcontextprotocol/client needs" >&2
fi
python="$(pick_python)" || { echo "no python3 >= 3.10 with venv/ensurepip found" >&2; exit 1; }

# --- npm half ----------------------------------------------------------------------------
if ! npm_done; then
    echo "installing MCP test npm packages into tests/mcp/node_modules" >&2
    (
        cd "$dir"
        export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
        if [ -f package-lock.json ]; then
            npm ci --no-audit --no-fund --loglevel=error
        else
            # First run only: resolve and write the lock (commit it).
            npm install --no-audit --no-fund --save-exact --omit-lockfile-registry-resolved --loglevel=error
        fi
    )
    npm_stamp_want >"$dir/node_modules/.arbiter-stamp"
fi

# --- Python half -------------------------------------------------------------------------
if ! py_done; then
    echo "installing the MCP test venv tests/mcp/.venv with $python" >&2
    # Always a fresh venv: no leftovers from an older pin set or a vanished interpreter.
    rm -rf "$dir/.venv"
    "$python" -m venv "$dir/.venv"
    "$dir/.venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$dir/requirements.txt"
    "$dir/.venv/bin/python" -c 'import mcp.server.mcpserver, mcp.client.streamable_http, httpx2' ||
        { echo "the MCP test venv does not import mcp" >&2; exit 1; }
    py_stamp_want >"$dir/.venv/.arbiter-stamp"
fi
