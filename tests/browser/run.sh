#!/usr/bin/env bash
# Real-browser test of the flowplay web build (see tests/browser/playground.test.mjs).
#
#   tests/browser/run.sh                           # install what is missing, trunk build --release, test
#   FLOWPLAY_SKIP_WEB_BUILD=1 tests/browser/run.sh # test the dist/ that is already there
#
# Extra arguments go to playground.test.mjs (e.g. `--only=webgpu`, `--only=webgl`).
# Artifacts (screenshots, figures.json) land in tests/browser/artifacts/.
# Headless Chromium is Debian's /usr/bin/chromium (override with FLOWPLAY_CHROMIUM); the
# Playwright-downloaded browsers are never used (never run `npx playwright install`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true
export PATH="$HOME/.cargo/bin:$PATH"
chromium_bin="${FLOWPLAY_CHROMIUM:-/usr/bin/chromium}"
export FLOWPLAY_CHROMIUM="$chromium_bin"

t_start=$SECONDS
phase_start=$SECONDS
phase() { # phase NAME: report how long the previous phase took
  echo "browser-test: [$((SECONDS - phase_start)) s] $1"
  phase_start=$SECONDS
}
die() { echo "browser-test: FAIL: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $*"; fi
}

# ---------------------------------------------------------------- tools, only when missing
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "browser-test: installing playwright-core (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund)
fi

if [ ! -x "$chromium_bin" ]; then
  [ "$chromium_bin" = /usr/bin/chromium ] || die "FLOWPLAY_CHROMIUM=$chromium_bin is not executable"
  echo "browser-test: installing chromium (apt)"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

if [ "${FLOWPLAY_SKIP_WEB_BUILD:-0}" != 1 ]; then
  source scripts/web-tools.sh
  phase "tools ready"

  # ------------------------------------------------------------------------ web build
  trunk build --release || die "trunk build --release failed (see the errors above)"
  phase "trunk build --release done"
else
  phase "tools ready (FLOWPLAY_SKIP_WEB_BUILD=1: not building)"
fi

[ -f dist/index.html ] || die "dist/index.html is missing (run without FLOWPLAY_SKIP_WEB_BUILD=1)"
ls dist/*.wasm >/dev/null 2>&1 || die "dist/ has no .wasm file"

# ------------------------------------------------------------------------ serve dist/
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
server_log="$(mktemp)"
python3 -m http.server --bind 127.0.0.1 --directory dist "$port" >"$server_log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -f "$server_log"
}
trap cleanup EXIT

url="http://127.0.0.1:$port/"
for _ in $(seq 1 100); do
  if python3 - "$url" <<'EOF' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
EOF
  kill -0 "$server_pid" 2>/dev/null || { cat "$server_log" >&2; die "the static server exited"; }
  sleep 0.1
done
wasm_file="$(cd dist && ls *.wasm | head -n 1)"
wasm_type="$(python3 - "$url$wasm_file" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    print(r.headers.get("Content-Type"))
EOF
)" || die "cannot fetch $url$wasm_file"
[ "$wasm_type" = application/wasm ] || die "$wasm_file is served as '$wasm_type', not application/wasm"
phase "serving dist/ at $url"

# ------------------------------------------------------------------------ the test
status=0
node "$here/playground.test.mjs" "$url" "$@" || status=$?
phase "browser test finished (exit $status)"
echo "browser-test: total $((SECONDS - t_start)) s"
exit "$status"
