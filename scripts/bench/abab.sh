#!/usr/bin/env bash
# abab.sh REV [ROUNDS]: clipline's GEMM, vector-op, ranking and training
# benchmarks at git revision REV (A) and at the working tree (B), run
# alternately ABAB for ROUNDS rounds (default 3) so that a noisy shared
# machine slows both sides alike. Prints each round's load average and the
# raw benchmark lines prefixed A or B; compare the ratios across rounds.
#
#   scripts/bench/abab.sh a92a822 3
set -euo pipefail
rev=${1:?usage: abab.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/src" "$rev" >/dev/null 2>&1
pkgs=(internal/backend/cpu internal/metrics internal/train)
for side in A B; do
  src=$root; [ "$side" = A ] && src=$work/src
  mkdir -p "$work/$side"
  for p in "${pkgs[@]}"; do
    (cd "$src" && go test -c -o "$work/$side/$(basename "$p").test" "./$p")
  done
done
bench() { # side package pattern benchtime
  (cd "$root/$2" && "$work/$1/$(basename "$2").test" -test.run '^$' -test.bench "$3" \
    -test.benchtime "$4" -test.count 1 2>&1 | grep -E '^Benchmark' | sed "s/^/$1 /")
}
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for side in A B; do
    bench "$side" internal/backend/cpu 'BenchmarkLinear/(fwd|dIn|dW)/M1600_K768_N3072$' 20x
    bench "$side" internal/backend/cpu 'BenchmarkElementwise' 200x
    bench "$side" internal/metrics 'BenchmarkRankSmall$' 5x
    bench "$side" internal/train 'BenchmarkTrain/(tiny|vitb32)/lora$' 3x
  done
done | tee "$work/raw"
# B/A time per op, each round's A beside the same round's B.
echo "# B/A ns/op per round (below 1: B faster)"
awk '$1 == "A" || $1 == "B" { t[$1, $2, ++n[$1, $2]] = $4; names[$2] = 1 }
  END { for (b in names) { line = sprintf("%-52s", b)
          for (i = 1; i <= n["A", b]; i++) line = line sprintf(" %.3f", t["B", b, i] / t["A", b, i])
          print line } }' "$work/raw" | sort
