#!/usr/bin/env bash
# search_faiss.sh [ROUNDS] [THREADS]: exact top-10 search throughput of
# clipline (internal/search, via scripts/bench/searchbench) against faiss's
# IndexFlatIP (Debian's python3-faiss) over the same 200,000 random unit
# vectors of dimension 512, one query at a time (200 queries) and in
# batches of 64 (640 queries), on THREADS threads each (default: all cores;
# GOMAXPROCS for clipline, omp_set_num_threads and OpenBLAS's for faiss,
# with OpenMP's passive waiting, faiss's fastest setting here).
# The sides alternate ABAB for ROUNDS rounds (default 3) so that a noisy
# shared machine slows both alike; prints each run's queries/s, each
# round's ratio clipline/faiss (above 1: clipline faster), and per batch
# size the median ratio and its spread (min-max). Needs
# `apt-get install -y python3-faiss`.
#
#   scripts/bench/search_faiss.sh 3
#
# SEARCH_FAISS_N=20000 makes a smaller gallery, to check the script quickly.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
threads=${2:-$(nproc)}
py=/usr/bin/python3
if ! "$py" -c 'import faiss, numpy' 2>/dev/null; then
  echo "search_faiss.sh: $py lacks faiss or numpy: apt-get install -y python3-faiss" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/searchbench" ./scripts/bench/searchbench
"$work/searchbench" gen --dir "$work" --n "${SEARCH_FAISS_N:-200000}" --dim 512 --queries 704 --seed 1
# Passive waiting: libgomp's threads otherwise spin between faiss's loops
# and starve OpenBLAS's, which made faiss's batches several times slower
# here (95 against 580 queries/s on 2 cores).
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE
echo "# threads $threads; faiss $("$py" -c 'import faiss; print(faiss.__version__)')"
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for mode in "1 200" "64 640"; do
    set -- $mode
    a=$(GOMAXPROCS=$threads "$work/searchbench" run --dir "$work" --batch "$1" --queries "$2")
    b=$("$py" scripts/bench/search_faiss.py --dir "$work" --batch "$1" --queries "$2" --threads "$threads")
    qa=$(awk '/^queries/ {print $2}' <<<"$a")
    qb=$(awk '/^queries/ {print $2}' <<<"$b")
    agree=same
    [ "$(grep '^top' <<<"$a")" = "$(grep '^top' <<<"$b")" ] || agree=differs
    printf 'round %d batch %-2d clipline %8.1f q/s  faiss %8.1f q/s  ratio %.3f  (first query top-10 %s)\n' \
      "$r" "$1" "$qa" "$qb" "$(awk -v a="$qa" -v b="$qb" 'BEGIN {print a / b}')" "$agree"
  done
done | tee "$work/raw"
echo "# clipline/faiss per batch size: median (min-max) over $rounds rounds"
for bs in 1 64; do
  awk -v bs="$bs" '$4 == bs { print $12 }' "$work/raw" | sort -g |
    awk -v bs="$bs" '{ v[NR] = $1 } END {
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "batch %-2d median %.3f (%.3f-%.3f)\n", bs, m, v[1], v[NR] }'
done
