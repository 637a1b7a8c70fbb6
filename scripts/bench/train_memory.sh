#!/usr/bin/env bash
# train_memory.sh [REV] [ROUNDS]: train's anonymous memory and throughput at
# git revision REV (A, default 43e38ae: main before training data was
# memory-mapped, when train copied every pixel into RAM) and at the working
# tree (B), on synthetic data of 2,000 and 20,000 images at 224 px.
#
# The model is tiny (testdata/base-model's towers, vision image_size 224,
# patch 32, trained --from-scratch) so that data loading weighs in the
# step. Data: prepare synthetic --domain scenes, tokenize, decode at 224,
# written once as a stream (A reads it, as A's reader knows only streams)
# and once as an Arrow IPC file (B maps it). Each size runs A and B
# alternately (ABAB) for ROUNDS rounds (default 3), a fixed number of
# optimizer steps each (STEPS, default 60; batch 64). Per run: peak RssAnon
# (sampled every 0.1 s from /proc/PID/status; VmHWM counts mapped file
# pages too, which the page cache holds, not train) and pairs/s (the median
# of metrics.jsonl's logging windows, the first left out as warm-up). Then
# the median and the spread (min-max) of each side, and the load average.
#
#   scripts/bench/train_memory.sh              # A = 43e38ae, 3 rounds
#   SIZES="200 2000" STEPS=20 scripts/bench/train_memory.sh 43e38ae 2
#
# Heavy: the 20,000-image files are 3 GB each and are rendered and decoded
# first (minutes on 2 cores). Everything lives in a temporary folder under
# TMPDIR (default /tmp), removed at the end.
set -euo pipefail
rev=${1:-43e38ae}
rounds=${2:-3}
sizes=${SIZES:-2000 20000}
steps=${STEPS:-60}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/clipline-train-memory.XXXXXX")
cleanup() {
	git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== building train at $rev (A) and at the working tree (B)" >&2
git -C "$root" worktree add --detach "$work/src" "$rev" >/dev/null 2>&1
(cd "$work/src" && go build -o "$work/A/" ./train)
(cd "$root" && go build -o "$work/B/" ./train ./prepare ./tokenize ./decode)
bin=$work/B

# The model: base-model's tokenizer and towers at 224 px.
M=$work/model
mkdir -p "$M"
cp "$root/testdata/base-model/vocab.json" "$root/testdata/base-model/merges.txt" "$M/"
/usr/bin/python3 - "$root/testdata/base-model/config.json" "$M/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["vision_config"].update(image_size=224, patch_size=32)
json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
cat >"$work/config.yaml" <<EOF
batch_size: 64
max_steps: $steps
logging_steps: 5
eval_strategy: "no"
save_strategy: "no"
use_lora: false
learning_rate: 1e-4
EOF

# peak_anon PID: the largest RssAnon (kB) of PID until it exits.
peak_anon() {
	local peak=0 v
	while v=$(awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null); [ -n "$v" ]; do
		[ "$v" -gt "$peak" ] && peak=$v
		sleep 0.1
	done
	echo "$peak"
}

# run SIDE INPUT OUT: one training run; prints "peak_kB pairs_per_s".
run() {
	rm -rf "$3"
	"$work/$1/train" --model "$M" --from-scratch --config "$work/config.yaml" --in "$2" --out "$3" 2>"$3.log" &
	local pid=$!
	local peak
	peak=$(peak_anon "$pid")
	wait "$pid" || { cat "$3.log" >&2; return 1; }
	local pps
	pps=$(/usr/bin/python3 - "$3/metrics.jsonl" <<'EOF'
import json, statistics, sys
w = [r["pairs_per_s"] for r in map(json.loads, open(sys.argv[1])) if "pairs_per_s" in r]
print("%.1f" % statistics.median(w[1:] or w))
EOF
)
	rm -rf "$3" "$3.log"
	echo "$peak $pps"
}

for n in $sizes; do
	echo "== $n images: rendering, tokenizing, decoding at 224 px" >&2
	d=$work/data-$n
	"$bin/prepare" synthetic --domain scenes --seed 1 --images "$n" --render-dir "$d/images" 2>/dev/null |
		"$bin/tokenize" --model "$M" 2>/dev/null | "$bin/decode" --model "$M" --out "$d/pix.arrows" 2>/dev/null
	"$bin/tokenize" --model "$M" --in "$d/pix.arrows" --out "$d/pix.arrow" 2>/dev/null # the same rows as an IPC file
	rm -rf "$d/images"
	: >"$work/raw-$n"
	for r in $(seq 1 "$rounds"); do
		echo "# $n images, round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
		for side in A B; do
			in=$d/pix.arrow
			[ "$side" = A ] && in=$d/pix.arrows
			res=$(run "$side" "$in" "$work/out")
			echo "$side $n $res" | tee -a "$work/raw-$n"
		done
	done
	rm -rf "$d"
	/usr/bin/python3 - "$work/raw-$n" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for side in "AB":
    kb = [int(r[2]) for r in rows if r[0] == side]
    ps = [float(r[3]) for r in rows if r[0] == side]
    print("%s %s images: peak RssAnon %.0f MiB (%.0f-%.0f), pairs/s %.1f (%.1f-%.1f)" % (
        side, rows[0][1], statistics.median(kb) / 1024, min(kb) / 1024, max(kb) / 1024,
        statistics.median(ps), min(ps), max(ps)))
EOF
done
echo "# done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
