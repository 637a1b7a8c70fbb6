#!/usr/bin/env bash
# spm_speed.sh [ROUNDS]: tokens/s of clipline's SentencePiece encoder
# (internal/spm BenchmarkEncode, one goroutine) against python3-sentencepiece
# (spm_speed.py, one thread) on the same lines and model, alternated ABAB for
# ROUNDS rounds (default 3) with each round's load average, then the Go/Python
# ratios per round (per second and per CPU-second, the one to trust on a
# loaded machine) and their range.
set -euo pipefail
rounds=${1:-3}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go test -c -o "$work/spm.test" ./internal/spm)
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$root/internal/spm" && "$work/spm.test" -test.run '^$' -test.bench 'BenchmarkEncode$' \
    -test.benchtime 20x -test.count 1 | awk '/tokens\/s/ { for (i = 1; i < NF; i++) { if ($(i+1) == "tokens/s") w = $i; if ($(i+1) == "tokens/cpu-s") c = $i }; print "go", w, "tokens/s", c, "tokens/cpu-s" }')
  /usr/bin/python3 "$root/scripts/bench/spm_speed.py" "$root" 5
done | tee "$work/raw"
awk '$1 == "go" { g[++ng] = $2; gc[ng] = $4 } $1 == "python" { p[++np] = $2; pc[np] = $4 }
  END { lo = 1e18; hi = 0; clo = 1e18; chi = 0
        for (i = 1; i <= ng && i <= np; i++) {
          r = g[i] / p[i]; c = gc[i] / pc[i]
          printf "round %d: go/python %.2f per second, %.2f per CPU-second\n", i, r, c
          if (r < lo) lo = r; if (r > hi) hi = r; if (c < clo) clo = c; if (c > chi) chi = c }
        printf "go/python tokens/s: %.2f to %.2f; per CPU-second %.2f to %.2f (%d rounds)\n", lo, hi, clo, chi, (ng < np ? ng : np) }' "$work/raw"
