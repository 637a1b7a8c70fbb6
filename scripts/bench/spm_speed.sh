#!/usr/bin/env bash
# spm_speed.sh [ROUNDS]: tokens/s of clipline's SentencePiece encoder
# (internal/spm BenchmarkEncode, one goroutine) against python3-sentencepiece
# (spm_speed.py, one thread) on the same lines and model, alternated ABAB for
# ROUNDS rounds (default 3) with each round's load average, then the Go/Python
# ratio per round and its range.
set -euo pipefail
rounds=${1:-3}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go test -c -o "$work/spm.test" ./internal/spm)
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$root/internal/spm" && "$work/spm.test" -test.run '^$' -test.bench 'BenchmarkEncode$' \
    -test.benchtime 20x -test.count 1 | awk '/tokens\/s/ { for (i = 1; i < NF; i++) if ($(i+1) == "tokens/s") print "go", $i, "tokens/s" }')
  /usr/bin/python3 "$root/scripts/bench/spm_speed.py" "$root" 5
done | tee "$work/raw"
awk '$1 == "go" { g[++ng] = $2 } $1 == "python" { p[++np] = $2 }
  END { lo = 1e18; hi = 0; for (i = 1; i <= ng && i <= np; i++) { r = g[i] / p[i]; printf "round %d: go/python %.2f\n", i, r; if (r < lo) lo = r; if (r > hi) hi = r }
        printf "go/python tokens/s: %.2f to %.2f over %d rounds\n", lo, hi, (ng < np ? ng : np) }' "$work/raw"
