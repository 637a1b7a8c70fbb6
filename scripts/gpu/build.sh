#!/usr/bin/env bash
# Builds everything scripts/gpu/run.sh needs on the GPU machine (which has no
# Go) into .gpu/ (git-ignored), from the repository root:
#
#   bash scripts/gpu/build.sh          # then carry .gpu to the GPU machine
#
# Needs Go and the CUDA 11.8 headers (Debian: nvidia-cuda-dev, see
# docs/cuda.md). Binaries are stripped and gzipped to stay well under the
# 64 MiB a run may carry; run.sh unpacks them.
set -euo pipefail
cd "$(dirname "$0")/../.."
G=.gpu
rm -rf "$G"
mkdir -p "$G/bin"
export CGO_ENABLED=1
LD=(-trimpath -ldflags=-s\ -w)

echo "building GPU test binaries" >&2
go test -c -tags cuda "${LD[@]}" -o "$G/bin/cuda.test" ./internal/backend/cuda/
go test -c -tags cuda "${LD[@]}" -o "$G/bin/device.test" ./internal/device/

echo "building clbench" >&2
go build -tags cuda "${LD[@]}" -o "$G/bin/clbench" ./scripts/gpu/clbench

# The pipeline stages (every top-level folder with a main.go), for the
# GPU-versus-CPU recall check of the embedded default.
for m in */main.go; do
	s=$(dirname "$m")
	echo "building $s" >&2
	# A stage that does not build only costs the pipeline check (run.sh
	# skips it); the tests and the benchmark above do not need it.
	go build -tags cuda "${LD[@]}" -o "$G/bin/$s" "./$s" || echo "warning: $s did not build" >&2
done

# Reference data for the model parity tests (the tests find it through
# CLIPLINE_SHARED, which run.sh sets).
if [ -d ../shared/golden/tiny-clip ]; then
	mkdir -p "$G/shared/golden"
	cp -r ../shared/golden/tiny-clip "$G/shared/golden/"
	chmod -R u+w "$G/shared"
fi

# The CPU run's report of the embedded default, to compare the GPU run's
# recall with (make -f pipeline.mk writes it; the GPU machine regenerates
# the data itself).
mkdir -p "$G/default"
if [ -f out/default/report.json ]; then
	cp out/default/report.json "$G/default/cpu_report.json"
else
	echo "note: no out/default/report.json (run make -f pipeline.mk first for the recall comparison)" >&2
fi

gzip -9f "$G"/bin/*
du -sh "$G"
du -ah "$G" | sort -h | tail -12
