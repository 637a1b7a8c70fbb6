#!/usr/bin/env bash
# clipline's GPU checks and benchmark, in one run on a GPU machine (which
# needs the NVIDIA driver and, for the benchmark, Python with torch and
# transformers; peft optional). No Go there: build first, here, with
#
#   bash scripts/gpu/build.sh            # writes .gpu/ (carry it along)
#
# then on the GPU machine, from the repository root:
#
#   OUT=/some/dir bash scripts/gpu/run.sh          # about 5-8 minutes
#
# Writes into $OUT (default .gpu/out), at most 6 files:
#   run.log      what ran, the machine (nvidia-smi, driver, glibc, python)
#   test.log     the GPU tests: conformance fp32/bf16, attention at CLIP
#                shapes, large GEMMs, model parity vs PyTorch and the CPU
#   torch.log    the PyTorch benchmark's output
#   clbench.log  clipline's benchmark output, with the per-op GPU/host time
#                tables of a short profiled train and embed
#                (CLIPLINE_CUDA_PROFILE=1; also under "profile" in bench.json)
#   pipeline.log the embedded default trained on the GPU, recall vs the CPU run
#   bench.json   both benchmarks side by side with speed and memory ratios
# Every step has its own time limit and a failing step does not stop the
# rest; the exit status is non-zero when a test or the benchmark failed.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
G=$ROOT/.gpu
OUT=${OUT:-$G/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/clipline-gpu.XXXXXX)
BUDGET=${BUDGET:-480} # seconds for the whole run; optional steps give way
START=$SECONDS
STATUS=0

log() { echo "[$(date +%T) +$((SECONDS - START))s] $*" | tee -a "$OUT/run.log" >&2; }
left() { echo $((BUDGET - (SECONDS - START))); }
# step NAME LIMIT LOGFILE CMD...: runs CMD with a time limit, appending to LOGFILE.
step() {
	local name=$1 limit=$2 logf=$3
	shift 3
	local l
	l=$(left)
	if [ "$l" -lt 15 ]; then
		log "SKIP $name: time budget spent"
		return 1
	fi
	[ "$limit" -gt "$l" ] && limit=$l
	log "RUN  $name (limit ${limit}s)"
	echo "===== $name: $*" >>"$logf"
	timeout -k 10 "$limit" "$@" >>"$logf" 2>&1
	local rc=$?
	if [ $rc -eq 0 ]; then log "OK   $name"; else log "FAIL $name (exit $rc; 124 = time limit)"; fi
	return $rc
}

: >"$OUT/run.log"
log "clipline GPU run in $ROOT, results in $OUT, scratch $WORK"
{
	echo "== nvidia-smi"; nvidia-smi 2>&1 | head -20
	echo "== uname"; uname -a
	echo "== glibc"; ldd --version 2>&1 | head -1
	echo "== git"; git -C "$ROOT" log --oneline -1 2>/dev/null
	echo "== python"; python3 --version 2>&1
} >>"$OUT/run.log" 2>&1

# Unpack the binaries build.sh made.
if [ ! -d "$G/bin" ]; then
	log "no $G/bin: run bash scripts/gpu/build.sh where Go is, and carry .gpu"
	exit 2
fi
mkdir -p "$WORK/bin"
for f in "$G"/bin/*; do
	case $f in
	*.gz) gzip -dc "$f" >"$WORK/bin/$(basename "$f" .gz)" ;;
	*) cp "$f" "$WORK/bin/" ;;
	esac
done
chmod +x "$WORK"/bin/*
BIN=$WORK/bin

# cuBLAS: clipline dlopens it. PyTorch's wheels bring it in site-packages,
# off the loader's path, so look there and in the usual toolkit places.
if [ -z "${CLIPLINE_CUBLAS:-}" ]; then
	dirs=$(python3 - 2>/dev/null <<'EOF'
import glob, os, site, sys
cands = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    cands += glob.glob(os.path.join(base, "nvidia", "cublas", "lib"))
    cands += glob.glob(os.path.join(base, "torch", "lib"))
print(":".join(d for d in cands if glob.glob(os.path.join(d, "libcublas.so*"))))
EOF
	)
	for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
		ls "$d"/libcublas.so.* >/dev/null 2>&1 && dirs="$dirs:$d"
	done
	export LD_LIBRARY_PATH="${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
log "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} CLIPLINE_CUBLAS=${CLIPLINE_CUBLAS:-}"
if [ -n "${LD_LIBRARY_PATH:-}" ]; then
	for d in ${LD_LIBRARY_PATH//:/ }; do ls "$d"/libcublas*.so* 2>/dev/null; done >>"$OUT/run.log"
fi

export CLIPLINE_REQUIRE_GPU=1 # a GPU test that cannot open the GPU fails, never skips
if [ -d "$G/shared/golden/tiny-clip" ]; then
	export CLIPLINE_SHARED=$G/shared
	export CLIPLINE_REQUIRE_SHARED=1
elif [ -d "$ROOT/../shared/golden" ]; then
	export CLIPLINE_SHARED=$ROOT/../shared
fi
log "CLIPLINE_SHARED=${CLIPLINE_SHARED:-unset}"

# ---- 1. GPU tests ---------------------------------------------------------
: >"$OUT/test.log"
step "device tests" 30 "$OUT/test.log" "$BIN/device.test" -test.v || STATUS=1
step "cuda backend tests" 200 "$OUT/test.log" "$BIN/cuda.test" -test.v -test.timeout 190s || STATUS=1
grep -E "^(--- |FAIL|ok|PASS)|^\s+--- (FAIL|SKIP)|relative|vs PyTorch|device " "$OUT/test.log" | grep -v -- "--- PASS: TestConformance.*/" | head -80 >>"$OUT/run.log"

# ---- 2. benchmark ------------------------------------------------------------
MODEL=$WORK/vit-b32
: >"$OUT/torch.log"
: >"$OUT/clbench.log"
step "save random ViT-B/32 weights" 90 "$OUT/torch.log" python3 scripts/gpu/bench_torch.py save --model-dir "$MODEL" --seed 0 ||
	step "save random ViT-B/32 weights with clipline instead" 60 "$OUT/clbench.log" "$BIN/clbench" save --model "$MODEL"
B=${BATCH:-128}
if [ -f "$MODEL/model.safetensors" ]; then
	# clipline first (the script's own code, most important), then PyTorch.
	step "clipline train bf16" 90 "$OUT/clbench.log" "$BIN/clbench" train --model "$MODEL" --device cuda,bf16 \
		--batch "$B" --steps 20 --warmup 3 --label clipline_bf16 --out "$WORK/train_bf16.json" || STATUS=1
	step "clipline embed bf16" 60 "$OUT/clbench.log" "$BIN/clbench" embed --model "$MODEL" --device cuda,bf16 \
		--batch 256 --batches 20 --warmup 3 --label clipline_embed_bf16 --out "$WORK/embed_bf16.json" || STATUS=1
	# The same training with the MLP's hidden activations recomputed in the
	# backward: the memory-saving setting (recompute_mlp).
	step "clipline train bf16 recompute-mlp" 90 "$OUT/clbench.log" "$BIN/clbench" train --model "$MODEL" --device cuda,bf16 \
		--batch "$B" --steps 20 --warmup 3 --recompute-mlp --label clipline_bf16_recompute_mlp \
		--out "$WORK/train_bf16_recompute_mlp.json" || STATUS=1
	# Where the time goes: the same runs, short, with every op timed by CUDA
	# events (CLIPLINE_CUDA_PROFILE=1; the tables go to clbench.log, the
	# figures to bench.json). Profiling adds launches, so these runs' own
	# speed is not the benchmark's.
	step "clipline train bf16 profiled" 45 "$OUT/clbench.log" env CLIPLINE_CUDA_PROFILE=1 "$BIN/clbench" train \
		--model "$MODEL" --device cuda,bf16 --batch "$B" --steps 8 --warmup 2 --label clipline_train_bf16_profile \
		--out "$WORK/train_bf16_profile.json"
	step "clipline embed bf16 profiled" 30 "$OUT/clbench.log" env CLIPLINE_CUDA_PROFILE=1 "$BIN/clbench" embed \
		--model "$MODEL" --device cuda,bf16 --batch 256 --batches 8 --warmup 2 --label clipline_embed_bf16_profile \
		--out "$WORK/embed_bf16_profile.json"
	PROF=()
	for f in "$WORK"/train_bf16_recompute_mlp.json "$WORK"/train_bf16_profile.json "$WORK"/embed_bf16_profile.json; do
		[ -f "$f" ] && PROF+=("$f")
	done
	step "pytorch bench" 180 "$OUT/torch.log" python3 scripts/gpu/bench_torch.py bench --model-dir "$MODEL" \
		--batch "$B" --steps 20 --warmup 3 --embed-batch 256 --embed-batches 20 --out "$WORK/torch.json" || STATUS=1
	# A first bench.json now, in case the run is cut short later.
	python3 scripts/gpu/bench_torch.py merge --torch "$WORK/torch.json" --out "$OUT/bench.json" \
		--clipline "$WORK"/train_bf16.json "$WORK"/embed_bf16.json "${PROF[@]}" >/dev/null 2>&1
else
	log "no model weights (PyTorch/transformers missing?): benchmark skipped"
	STATUS=1
fi

# ---- 3. the embedded default on the GPU, recall against the CPU run ----------
# (before the benchmark's extras: it is one of the checks this run is for)
: >"$OUT/pipeline.log"
if [ -x "$BIN/train" ] && [ -x "$BIN/embed" ] && [ -x "$BIN/rank" ] && [ -d testdata/base-model ]; then
	lim=$(left)
	[ "$lim" -gt 150 ] && lim=150
	bash scripts/gpu/default_gpu.sh "$BIN" "$G/default" "$WORK/default" "$OUT/pipeline.log" "$lim" || STATUS=1
	tail -30 "$OUT/pipeline.log" >>"$OUT/run.log"
else
	log "SKIP embedded default on GPU: stage binaries or testdata/base-model missing"
fi

# ---- 4. benchmark extras, then bench.json ----------------------------------------
if [ -f "$MODEL/model.safetensors" ]; then
	# Extras while time remains: the other precision modes, GradCache (one
	# chunk's activations at a time), fp32, and realistic caption lengths
	# (clipline runs only up to the batch's last end-of-text token).
	J=()
	extra() { # extra LABEL LIMIT clbench-args...
		local label=$1 limit=$2
		shift 2
		step "clipline $label" "$limit" "$OUT/clbench.log" "$BIN/clbench" "$@" --model "$MODEL" --label "clipline_$label" \
			--out "$WORK/$label.json" && J+=("$WORK/$label.json")
	}
	# bf16 with the fp32 attention kernels instead of the tensor-core ones.
	step "clipline train_bf16_fp32_attention" 60 "$OUT/clbench.log" env CLIPLINE_CUDA_NO_TC_ATTENTION=1 \
		"$BIN/clbench" train --device cuda,bf16 --batch "$B" --steps 20 --warmup 3 --model "$MODEL" \
		--label clipline_train_bf16_fp32_attention --out "$WORK/train_bf16_fp32_attention.json" &&
		J+=("$WORK/train_bf16_fp32_attention.json")
	extra train_bf16auto 60 train --device cuda,bf16auto --batch "$B" --steps 20 --warmup 3
	extra train_tf32 60 train --device cuda,tf32 --batch "$B" --steps 20 --warmup 3
	extra embed_bf16auto 45 embed --device cuda,bf16auto --batch 256 --batches 20 --warmup 3
	extra train_bf16_gradcache32 60 train --device cuda,bf16 --batch "$B" --gradcache 32 --steps 10 --warmup 2
	extra train_fp32 60 train --device cuda --batch "$B" --steps 10 --warmup 2
	extra train_bf16_short_captions 60 train --device cuda,bf16 --batch "$B" --steps 20 --warmup 3 --eot-min 8 --eot-max 32
	# Both sides once more, last: PyTorch's speed has varied between runs on
	# the same card (74 and 111 ms a step), so the ratios use its faster run.
	extra train_bf16_repeat 60 train --device cuda,bf16 --batch "$B" --steps 20 --warmup 3
	REPEAT=()
	step "pytorch bench (repeat)" 120 "$OUT/torch.log" python3 scripts/gpu/bench_torch.py bench --model-dir "$MODEL" \
		--batch "$B" --steps 20 --warmup 3 --embed-batch 256 --embed-batches 20 --out "$WORK/torch2.json" &&
		REPEAT=(--torch-repeat "$WORK/torch2.json")
	python3 scripts/gpu/bench_torch.py merge --torch "$WORK/torch.json" "${REPEAT[@]}" --out "$OUT/bench.json" \
		--clipline "$WORK"/train_bf16.json "$WORK"/embed_bf16.json "${PROF[@]}" "${J[@]}" \
		>>"$OUT/run.log" 2>&1 || STATUS=1
	log "bench.json written"
fi

log "done in $((SECONDS - START))s, status $STATUS"
rm -rf "$WORK"
exit $STATUS
