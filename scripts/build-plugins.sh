#!/usr/bin/env bash
# Builds the reference plugins (and the adversarial test fixture) as WebAssembly
# components for wasm32-wasip2 and copies them to build/plugins/ (the fixture to
# build/fixtures/, signed with build/keys/fixtures.pem, which only tests trust).
# Installs the wasm32-wasip2 Rust target if it is missing.
#
# Then signs every built module: a development key pair is made in build/keys/
# (dev.pem, dev.pub.pem) if missing, with `arbiter keygen`, and each build/plugins/*.wasm
# gets a `.sig` from `arbiter sign`. build/ is gitignored: this key is for development
# and tests only and is never committed; production modules are signed with the
# security team's own key (see README.md, "Signing plugins").
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 Rust target" >&2
    rustup target add wasm32-wasip2
fi

plugins=(intent scope sensitivity misbehave)
args=()
for p in "${plugins[@]}"; do args+=(-p "$p"); done
cargo build --locked --target wasm32-wasip2 --profile plugin "${args[@]}"

# The hostile test fixture goes apart from the plugins, signed with a key of its own
# that only the tests trust: a module signed by a key the example config trusts could be
# dropped into any of its plugin slots.
mkdir -p build/plugins build/fixtures
for p in "${plugins[@]}"; do
    if [[ "$p" == misbehave ]]; then
        cp "target/wasm32-wasip2/plugin/$p.wasm" "build/fixtures/$p.wasm"
    else
        cp "target/wasm32-wasip2/plugin/$p.wasm" "build/plugins/$p.wasm"
    fi
done
rm -f build/plugins/misbehave.wasm build/plugins/misbehave.wasm.sig
# The contract policy's language twins (JS, Python, C toolchains). The quick start
# (scripts/run-example.sh) needs only the reference plugins and skips them.
if [[ "${ARBITER_REFERENCE_PLUGINS_ONLY:-0}" != 1 ]]; then
    scripts/build-contract-plugins.sh
fi
echo "built: $(cd build/plugins && ls *.wasm | tr '\n' ' ')" >&2

# Sign with the development key (made once; the build never overwrites it).
if [[ "${ARBITER_SIGN_WITH_OPENSSL:-}" == 1 ]]; then
    # The test command signs with plain OpenSSL (the interop path of README "Signing with
    # plain OpenSSL"): building the arbiter CLI here, without the tests' dev-dependency
    # features, would compile wasmtime, tokio and hyper a second time (measured: ~10 min
    # of a cold CI run on 2 cores).
    keygen() {
        openssl genpkey -algorithm ed25519 -out "$1" 2>/dev/null
        openssl pkey -in "$1" -pubout -out "${1%.pem}.pub.pem"
        echo "made ed25519 key $1 (and ${1%.pem}.pub.pem) with openssl" >&2
    }
    sign() {
        local key=$1
        shift
        for module in "$@"; do
            openssl pkeyutl -sign -inkey "$key" -rawin -in "$module" | base64 -w0 > "$module.sig"
            echo "signed \`$module\` with $key (openssl): \`$module.sig\`" >&2
        done
    }
else
    echo "building the arbiter CLI to sign them (the first build compiles wasmtime: several minutes)" >&2
    cargo build --locked -p arbiter-host --bin arbiter
    arbiter=(cargo run --locked --quiet -p arbiter-host --bin arbiter --)
    keygen() { "${arbiter[@]}" keygen --out "$1"; }
    sign() {
        local key=$1
        shift
        "${arbiter[@]}" sign --key "$key" "$@"
    }
fi
mkdir -p build/keys
if [[ ! -f build/keys/dev.pem ]]; then
    keygen build/keys/dev.pem
fi
sign build/keys/dev.pem build/plugins/*.wasm
if [[ ! -f build/keys/fixtures.pem ]]; then
    keygen build/keys/fixtures.pem
fi
sign build/keys/fixtures.pem build/fixtures/*.wasm
