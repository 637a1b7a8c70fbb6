#!/usr/bin/env bash
# clipline vs PyTorch on this machine's CPU, one after the other:
# ViT-B/32 image embedding (batch 32) and training pairs/s at batch 32
# (tiny config full fine-tuning; ViT-B/32 with LoRA r=16 on q,k,v,out).
# Needs Debian's python3-torch with an optimised BLAS (apt install python3-torch
# libopenblas0-pthread; without OpenBLAS torch runs on the reference BLAS). Usage:
#   bash scripts/bench/cpu_compare.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-$(nproc)}
echo "== clipline (GOMAXPROCS=$threads)" >&2
GOMAXPROCS=$threads go test -run '^$' -bench 'BenchmarkViTB32Embed/32$' -benchtime 3x ./internal/model/ | grep -E '^Benchmark'
GOMAXPROCS=$threads go test -run '^$' -bench 'BenchmarkTrain/(tiny|vitb32)/(full|lora)$' -benchtime 3x ./internal/train/ | grep -E '^Benchmark'
echo "== PyTorch ($threads threads)" >&2
/usr/bin/python3 scripts/bench/torch_cpu.py --threads "$threads"
