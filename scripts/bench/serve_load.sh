#!/usr/bin/env bash
# serve_load.sh [CLIENTS] [SECONDS]: serve under a bounded loopback load.
# Makes a ViT-B/32-sized model with random weights (clbench save; the
# tokenizer files of testdata/base-model), indexes 64 synthetic images with
# it, starts serve on 127.0.0.1 (a free port) on the CPU and runs
# scripts/bench/serveload: CLIENTS concurrent clients (default 16) sending
# text queries for SECONDS (default 20), then prints QPS, p50, p99 and the
# error count. Extra serve flags can come in SERVE_FLAGS (e.g.
# SERVE_FLAGS="--batch-window 0"). Everything is under a temporary folder,
# removed at the end; serve is stopped with SIGTERM.
set -euo pipefail
clients=${1:-16}
secs=${2:-20}
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/clipline-serve-load.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/bin/" ./prepare ./tokenize ./decode ./embed ./index ./serve ./scripts/bench/serveload ./scripts/gpu/clbench
M=$work/vitb32
"$work/bin/clbench" save --model "$M"
cp testdata/base-model/vocab.json testdata/base-model/merges.txt "$M/"
echo "== indexing 64 images with the ViT-B/32-sized model" >&2
"$work/bin/prepare" synthetic --domain scenes --seed 5 --images 64 --render-dir "$work/images" 2>/dev/null \
	| "$work/bin/tokenize" --model "$M" 2>/dev/null | "$work/bin/decode" --model "$M" 2>/dev/null \
	| "$work/bin/embed" --model "$M" 2>/dev/null | "$work/bin/index" --out "$work/index"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$work/bin/serve" --model "$M" --index "$work/index" --addr "127.0.0.1:$port" ${SERVE_FLAGS:-} 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 300); do
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
	sleep 0.1
done
echo "== serve on $(nproc) cores, GOMAXPROCS=${GOMAXPROCS:-all}, flags: ${SERVE_FLAGS:-defaults}" >&2
"$work/bin/serveload" --url "http://127.0.0.1:$port" --clients "$clients" --duration "${secs}s"
curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^clipline_serve_encode_batch_size_(sum|count)' || true
