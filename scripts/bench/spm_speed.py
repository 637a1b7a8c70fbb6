#!/usr/bin/python3
"""python3-sentencepiece's side of spm_speed.sh: encodes
internal/spm/testdata/corpus.txt one line at a time with unigram.model,
N passes, and prints tokens per second and per CPU-second (as
BenchmarkEncode reports them)."""
import sys
import time

import sentencepiece as spm

root, passes = sys.argv[1], int(sys.argv[2])
sp = spm.SentencePieceProcessor(model_file=f"{root}/internal/spm/testdata/unigram.model")
lines = open(f"{root}/internal/spm/testdata/corpus.txt", encoding="utf-8").read().strip().split("\n")
tokens = 0
start, cpu = time.perf_counter(), time.process_time()
for _ in range(passes):
    for l in lines:
        tokens += len(sp.encode(l))
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(f"python {tokens / wall:.0f} tokens/s {tokens / cpu:.0f} tokens/cpu-s")
