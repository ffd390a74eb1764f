#!/usr/bin/env bash
# Installs what the web build needs, only when missing or of the wrong version: the wasm32
# target, trunk 0.21, wasm-bindgen-cli at exactly the version in Cargo.lock, and wasm-opt from
# npm's binaryen 132 (trunk can download neither here; Debian's binaryen 108 builds a page that
# dies at start-up). Sourced by scripts/serve.sh and tests/browser/run.sh; run from the root.
# Versions and timings: docs/toolchain.md.

export PATH="$HOME/.cargo/bin:$PATH"

# rustup reads rust-toolchain.toml here, so this checks the toolchain the build uses.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

if ! command -v trunk >/dev/null; then
  echo "web-tools: installing trunk 0.21, once: about 2.5 minutes on a 2-core machine (docs/toolchain.md)"
  # trunk only runs cargo, wasm-bindgen and wasm-opt and copies files: an unoptimised build
  # without debug info serves as well and installs in 2.5 minutes instead of 18-21 (its
  # release profile: fat LTO, one codegen unit). No default features: no TLS (trunk downloads
  # nothing here) and no check for a newer version.
  CARGO_PROFILE_DEV_DEBUG=0 \
    cargo install trunk --version '~0.21' --locked --debug --no-default-features
fi

wb_want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$wb_want" ]; then
  echo "web-tools: no wasm-bindgen package in Cargo.lock" >&2
  exit 1
fi
wb_have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$wb_have" != "$wb_want" ]; then
  echo "web-tools: installing wasm-bindgen-cli $wb_want (found: ${wb_have:-none})"
  # Without --locked: one of its locked dependencies is no longer on the registry.
  cargo install wasm-bindgen-cli --version "$wb_want"
fi

# wasm-opt for release builds (web/index.html's data-wasm-opt; Trunk.toml pins version_132):
# npm's binaryen, a WebAssembly build run by node, in scripts/wasm-opt/node_modules.
wasm_opt_dir="$PWD/scripts/wasm-opt"
if [ "$("$wasm_opt_dir/node_modules/.bin/wasm-opt" --version 2>/dev/null | awk '{ print $3 }')" != 132 ]; then
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -q && apt-get install -y -q --no-install-recommends nodejs npm
    else
      echo "web-tools: wasm-opt needs node and npm (apt-get install nodejs npm)" >&2
      exit 1
    fi
  fi
  echo "web-tools: installing wasm-opt (npm binaryen 132)"
  (cd "$wasm_opt_dir" && npm ci --no-audit --no-fund)
fi
export PATH="$wasm_opt_dir/node_modules/.bin:$PATH"
