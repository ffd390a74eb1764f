#!/usr/bin/env bash
# Native smoke test: the desktop app starts under Xvfb, trains, and draws particles.
# Usage: tests/native_smoke.sh path/to/flowplay-app   (the screenshot goes to tests/native-artifacts/)
# Needs Xvfb and ImageMagick's `import` (.ci/run installs them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$1"
out="$root/tests/native-artifacts"
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
app=""
cleanup() {
  [ -n "$app" ] && kill "$app" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
export DISPLAY="$display"
sleep 1

log="$out/native.log"
"$bin" 'train=1&particles=2000' >"$log" 2>&1 &
app=$!
# Give it time to open the window, train and integrate the particles (debug build, software GL).
for _ in $(seq 1 30); do
  sleep 1
  kill -0 "$app" 2>/dev/null || { cat "$log" >&2; echo "native smoke: the app exited" >&2; exit 1; }
done
import -window root -depth 8 "$out/native.ppm"
import -window root "$out/native.png"
kill -0 "$app" 2>/dev/null || { cat "$log" >&2; echo "native smoke: the app exited" >&2; exit 1; }

# Count orange particle pixels (about rgb(255, 140, 30)) in the raw screenshot.
python3 - "$out/native.ppm" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
# Binary PPM: "P6", width, height and maximum as text, then one whitespace byte and RGB bytes
# (which may themselves start with whitespace values, so the header is read token by token).
import re
m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
assert m, data[:20]
w, h = int(m.group(1)), int(m.group(2))
pixels = data[m.end():]
orange = sum(
    1
    for i in range(0, w * h * 3, 3)
    if pixels[i] > 200 and 90 < pixels[i + 1] < 190 and pixels[i + 2] < 90
)
distinct = len({pixels[i:i + 3] for i in range(0, w * h * 3, 3 * 97)})
print(f"native smoke: {w}x{h} screenshot, {orange} orange particle pixels, {distinct} sampled colours")
if orange < 200 or distinct < 8:
    sys.exit("native smoke: FAIL: no particles on screen")
PY
rm -f "$out/native.ppm"
echo "native smoke: ok (screenshot tests/native-artifacts/native.png)"
