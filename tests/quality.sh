#!/usr/bin/env bash
# End-to-end quality checks on a release build of the CLI:
#  1. the README's seed-recipe commands (Quick Reference §8), verbatim, then `flowplay eval`:
#     W2 ≤ 0.70 on 2000 vs 2000 points (the PyTorch reference gets 0.62–0.67);
#  2. the default configuration (`flowplay train` with no options): W2 ≤ 0.15.
# Usage: tests/quality.sh path/to/flowplay
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "quality: FAIL: $*" >&2; exit 1; }

# The two commands exactly as the README gives them.
train_cmd='flowplay train --dataset moons --path rectified-flow --hidden 128 --t-dim 128 --batch 512 --lr 3e-4 --t-sampling logit-normal --steps 2000 --seed 0 --out runs/seed'
sample_cmd='flowplay sample --weights runs/seed/weights.safetensors --solver euler --steps 50 --n 2000 --seed 1 --out runs/seed/euler50.csv'
for cmd in "$train_cmd" "$sample_cmd"; do
  grep -qF -- "$cmd" "$root/README.md" || fail "the README no longer contains: $cmd"
done

flowplay() { "$bin" "$@"; }
eval "$train_cmd --quiet"
eval "$sample_cmd"
w2=$(flowplay eval --samples runs/seed/euler50.csv --dataset moons --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["w2"])')
echo "seed recipe, Euler 50 steps: W2 = $w2 (bound 0.70; PyTorch reference 0.62-0.67)"
python3 -c "import sys; sys.exit(0 if $w2 <= 0.70 else 1)" || fail "seed recipe W2 $w2 > 0.70"

flowplay train --quiet --out runs/default
w2=$(python3 -c 'import json; m=json.load(open("runs/default/metrics.json")); print(m["final_quality_raw"]["w2"])')
echo "default configuration: W2 = $w2 (bound 0.15)"
python3 -c "import sys; sys.exit(0 if $w2 <= 0.15 else 1)" || fail "default configuration W2 $w2 > 0.15"
echo "quality: ok"
