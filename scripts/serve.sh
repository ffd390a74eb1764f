#!/usr/bin/env bash
# Serves the playground's web build on http://127.0.0.1:8080 (Trunk.toml), rebuilding on change.
# Installs the wasm32 target, trunk and wasm-bindgen-cli first when they are missing.
# Extra arguments go to `trunk serve` (e.g. `--release`, `--port 9000`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/web-tools.sh
exec trunk serve "$@"
