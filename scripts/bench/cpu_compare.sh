#!/usr/bin/env bash
# cpu_compare.sh [ROUNDS] [THREADS]: clipline against PyTorch on this machine's
# CPU, run ALTERNATELY (each round runs every side of a measurement one after
# the other, ROUNDS rounds, default 3) so that a noisy shared machine slows
# all sides alike. PyTorch runs OpenAI's CLIP model semantics
# (scripts/bench/torch_cpu.py) in fp32 and under
# torch.autocast("cpu", dtype=torch.bfloat16); clipline in fp32 (clipline) and,
# for the embeddings, with --device cpu,bf16 (clipline_bf16: VDPBF16PS on
# avx512_bf16 CPUs, else the slower AVX2 bf16 kernel; CPU training is fp32
# only). Measurements, one function each:
#   image  ViT-B/32 image embedding, batch 32 (images/s)
#   text   ViT-B/32 text embedding, batch 32, 20-token captions run at their
#          real length on both sides (captions/s; see torch_cpu.py)
#   lora   ViT-B/32 LoRA training r=16 on q,k,v,out, batch 32 (pairs/s)
#   tiny   full training of the tiny golden config, batch 32 (pairs/s)
# Prints every raw figure, then per measurement each clipline/torch ratio as
# median and min-max over the rounds (each round's clipline figure over the
# same round's torch figure), clipline_bf16/clipline likewise, and the load
# average at start and end.
#
# Needs Debian's python3-torch with an optimised BLAS (apt install
# python3-torch libopenblas0-pthread; without OpenBLAS torch runs on the
# reference BLAS). Environment:
#   CPU_COMPARE_ONLY   measurements to run (default "image text lora tiny")
#   CPU_COMPARE_SIDES  sides to run (default "clipline clipline_bf16 torch_fp32
#                      torch_bf16")
#   CPU_COMPARE_SKIP   measurement:side pairs not to run, e.g. "image:torch_bf16
#                      lora:torch_bf16": without avx512_bf16 (AVX2 machines)
#                      autocast bf16 runs oneDNN's reference kernels, ten times
#                      slower than fp32 and a quarter hour per image batch
#   TORCH_MIN_SECONDS  timed seconds per torch figure (default 10)
# To add a side (say clipline_bf16), add its case to each measurement function.
#
#   nice bash scripts/bench/cpu_compare.sh 3 2
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
threads=${2:-$(nproc)}
read -r -a measures <<<"${CPU_COMPARE_ONLY:-image text lora tiny}"
read -r -a sides <<<"${CPU_COMPARE_SIDES:-clipline clipline_bf16 torch_fp32 torch_bf16}"
# Training has no clipline_bf16 side (cpu,bf16 is for inference).
skip=" ${CPU_COMPARE_SKIP:-} lora:clipline_bf16 tiny:clipline_bf16 "
min_s=${TORCH_MIN_SECONDS:-10}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for p in model train; do
  go test -c -o "$work/$p.test" "./internal/$p"
done

# gobench PKG PATTERN BENCHTIME UNIT: the UNIT metric of one Go benchmark run
# at GOMAXPROCS=threads.
gobench() {
  (cd "internal/$1" && GOMAXPROCS=$threads "$work/$1.test" -test.run '^$' \
    -test.bench "$2" -test.benchtime "$3" -test.count 1) |
    awk -v u="$4" '/^Benchmark/ { for (i = 3; i < NF; i++) if ($(i + 1) == u) v = $i }
      END { if (v == "") exit 1; print v }'
}

# torchbench ONLY MODE: the figure of one torch_cpu.py call.
torchbench() {
  "$py" scripts/bench/torch_cpu.py --threads "$threads" --only "$1" --mode "$2" \
    --min-seconds "$min_s" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["value"])'
}

# One function per measurement; argument: the side.
m_image() {
  case $1 in
  clipline) gobench model 'BenchmarkViTB32Embed/batch=32$' 4x images/s ;;
  clipline_bf16) gobench model 'BenchmarkBF16EmbedViTB32/batch=32$' 4x images/s ;;
  torch_fp32) torchbench image fp32 ;;
  torch_bf16) torchbench image bf16 ;;
  esac
}
m_text() {
  case $1 in
  clipline) gobench model 'BenchmarkViTB32TextEmbed$' 20x captions/s ;;
  clipline_bf16) gobench model 'BenchmarkBF16TextEmbedViTB32$' 20x captions/s ;;
  torch_fp32) torchbench text fp32 ;;
  torch_bf16) torchbench text bf16 ;;
  esac
}
m_lora() {
  case $1 in
  clipline) gobench train 'BenchmarkTrain/vitb32/lora$' 3x pairs/s ;;
  torch_fp32) torchbench lora fp32 ;;
  torch_bf16) torchbench lora bf16 ;;
  esac
}
m_tiny() {
  case $1 in
  clipline) gobench train 'BenchmarkTrain/tiny/full$' 60x pairs/s ;;
  torch_fp32) torchbench tiny fp32 ;;
  torch_bf16) torchbench tiny bf16 ;;
  esac
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores," \
  "flags: $(grep -m1 -o -w 'avx512_bf16\|avx512f\|avx2\|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "# torch $("$py" -c 'import torch; print(torch.__version__)'), threads $threads, rounds $rounds, $(go version)"
echo "# load average at start: $(load)${CPU_COMPARE_SKIP:+; skipped: $CPU_COMPARE_SKIP}"
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(load)"
  for m in "${measures[@]}"; do
    for s in "${sides[@]}"; do
      [[ $skip == *" $m:$s "* ]] && continue
      v=$("m_$m" "$s") || { echo "cpu_compare: $m on $s failed" >&2; exit 1; }
      echo "$r $m $s $v"
    done
  done
done | tee "$work/raw"
echo "# load average at end: $(load)"

echo "# ratio clipline/torch per measurement: median [min-max] over the rounds"
awk -v a='^clipline' -v b='^torch' -f scripts/bench/ratios.awk "$work/raw" | sort
echo "# ratio clipline_bf16/clipline (cpu,bf16 over fp32)"
awk -v a='^clipline_bf16$' -v b='^clipline$' -f scripts/bench/ratios.awk "$work/raw" | sort
