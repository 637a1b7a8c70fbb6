#!/usr/bin/env bash
# bf16_metrics.sh: the embedded default's retrieval metrics with embed on
# --device cpu (fp32) and --device cpu,bf16, for the base model (zero-shot)
# and the fine-tuned one, and whether every metric agrees within 0.5 points
# (the condition for cpu,bf16 being embed's default on avx512_bf16 CPUs).
# Needs the default pipeline's outputs: run `make -f pipeline.mk` first.
# Exits 1 when a metric differs by more than 0.5 points.
#
#   scripts/bench/bf16_metrics.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
pix=data/scenes.pix.arrow
tuned=out/default/run/final
for f in "$pix" "$tuned/model.safetensors"; do
  [ -e "$f" ] || { echo "bf16_metrics.sh: $f is missing: run make -f pipeline.mk first" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/embed" ./embed
go build -o "$work/rank" ./rank
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"
for m in zero_shot:testdata/base-model fine_tuned:$tuned; do
  for dev in cpu cpu,bf16; do
    "$work/embed" --model "${m#*:}" --device "$dev" --split test --in "$pix" 2> >(grep -E '^embed: [0-9]+ rows' >&2) \
      | "$work/rank" --out "$work/${m%%:*}.$dev.json"
  done
done
/usr/bin/python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
worst = 0.0
print(f"{'model':<11} {'metric':<11} {'fp32':>7} {'bf16':>7} {'diff':>6}  (points)")
for m in ("zero_shot", "fine_tuned"):
    a = json.load(open(f"{work}/{m}.cpu.json"))
    b = json.load(open(f"{work}/{m}.cpu,bf16.json"))
    for d in ("t2i", "i2t"):
        for k, v in a[d].items():
            diff = 100 * (b[d][k] - v)
            worst = max(worst, abs(diff))
            print(f"{m:<11} {d + ' ' + k:<11} {100 * v:7.2f} {100 * b[d][k]:7.2f} {diff:+6.2f}")
print(f"largest difference {worst:.2f} points: " + ("within 0.5" if worst <= 0.5 else "MORE THAN 0.5"))
sys.exit(0 if worst <= 0.5 else 1)
PY
