#!/usr/bin/env bash
# bf16_speed.sh [ROUNDS]: ViT-B/32 image embedding (batch 32) and text
# embedding (batch 32, 20-token captions) on --device cpu (fp32, A) and
# cpu,bf16 (B), alternated ABAB for ROUNDS rounds (default 3) so that a noisy
# machine slows both alike. Prints each round's load average, the raw
# benchmark lines, and per benchmark the B/A throughput ratio of every round
# with their median and spread (above 1: bf16 faster). The bf16 kernel is
# VDPBF16PS where the CPU has avx512_bf16, else the AVX2 one.
#
#   scripts/bench/bf16_speed.sh 3
set -euo pipefail
rounds=${1:-3}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go test -c -o "$work/model.test" ./internal/model)
grep -o -m1 'avx512_bf16' /proc/cpuinfo >/dev/null && echo "# CPU has avx512_bf16: VDPBF16PS kernel" \
  || echo "# CPU has no avx512_bf16: AVX2 bf16 kernel"
bench() { # side pattern
  (cd "$root/internal/model" && "$work/model.test" -test.run '^$' -test.bench "$2" \
    -test.benchtime 4x -test.count 1 2>&1 | grep -E '^Benchmark' | sed "s/^/$1 /") ||
    { echo "bf16_speed.sh: benchmark $2 gave no result" >&2; exit 1; }
}
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  bench A 'BenchmarkViTB32Embed/batch=32$'
  bench B 'BenchmarkBF16EmbedViTB32/batch=32$'
  bench A 'BenchmarkViTB32TextEmbed$'
  bench B 'BenchmarkBF16TextEmbedViTB32$'
done | tee "$work/raw"
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
# Throughput per CPU-second (images/cpu-s, captions/cpu-s) and per second,
# B over the same round's A.
echo "# B/A (bf16 / fp32) per round, median [min, max]"
awk '$1 == "A" || $1 == "B" {
       kind = ($2 ~ /Text/) ? "text" : "image"
       for (i = 3; i < NF; i++) if ($(i+1) ~ /\/(s|cpu-s)$/) v[$1, kind, $(i+1), ++n[$1, kind, $(i+1)]] = $i
       kinds[kind] = 1 }
     END { for (k in kinds) for (u = 0; u < 2; u++) {
             unit = (k == "text") ? (u ? "captions/cpu-s" : "captions/s") : (u ? "images/cpu-s" : "images/s")
             m = n["A", k, unit]; line = sprintf("%-6s %-15s", k, unit)
             for (i = 1; i <= m; i++) { r[i] = v["B", k, unit, i] / v["A", k, unit, i]; line = line sprintf(" %.3f", r[i]) }
             for (i = 2; i <= m; i++) for (j = i; j > 1 && r[j-1] > r[j]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
             line = line sprintf("   median %.3f [%.3f, %.3f]", r[int((m + 1) / 2)], r[1], r[m])
             print line; delete r } }' "$work/raw" | sort
