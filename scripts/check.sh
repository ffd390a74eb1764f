#!/usr/bin/env bash
# The project's test command, and exactly what CI runs (via .ci/run):
# formatting, lints on native and wasm32, every test, the end-to-end quality checks, then the
# web build in headless Chromium (tests/browser/run.sh installs trunk, wasm-bindgen-cli,
# playwright-core and chromium when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy, native"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy, wasm32 (the crates that run in the browser)"
cargo clippy -p flowplay-core -p flowplay-gpu -p flowplay-app --target wasm32-unknown-unknown --locked -- -D warnings

step "tests (unit, fixtures against the PyTorch reference, WGSL validation, GPU kernels against the CPU, CLI end to end)"
if [ -n "${FLOWPLAY_REQUIRE_GPU:-}" ]; then
  echo "FLOWPLAY_REQUIRE_GPU is set: GPU tests fail without an adapter"
fi
cargo test --workspace --locked

step "the desktop app under Xvfb: it opens, trains and draws particles (screenshot kept)"
cargo build -p flowplay-app --locked
tests/native_smoke.sh target/debug/flowplay-app

step "end-to-end quality: the README's seed-recipe commands, and the default configuration"
cargo build --release --locked -p flowplay-cli
tests/quality.sh target/release/flowplay

step "the web build in a real browser: WebGPU (SwiftShader) and the WebGL fallback"
tests/browser/run.sh

step "all checks passed"
