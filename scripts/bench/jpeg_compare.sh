#!/usr/bin/env bash
# jpeg_compare.sh [ROUNDS] [IMAGE]: CLIP preprocessing of one JPEG (decode,
# RGB, bicubic resize of the shortest side to 224, center crop) per core:
# clipline's decode path as built by default (Go's image/jpeg) and with
# -tags turbojpeg (libjpeg-turbo), against Pillow (scripts/bench/pil_decode.py),
# run ALTERNATELY for ROUNDS rounds (default 3). Every side is measured in
# CPU time of one core (clipline: BenchmarkDecode224 at GOMAXPROCS=1, its
# cpu-ms/image; Pillow: time.process_time in one process), so figures are
# images per CPU-second: what one core does. IMAGE defaults to the shared
# 500x375 landscape photo. Prints raw figures, each clipline/Pillow ratio as
# median [min-max] over the rounds, and the load average at start and end.
#
#   nice bash scripts/bench/jpeg_compare.sh 3
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
image=${2:-../shared/golden/preprocess/landscape_500x375.jpg}
[ -f "$image" ] || { echo "jpeg_compare: no image $image" >&2; exit 1; }
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/go.test" ./internal/imageproc
go test -c -tags turbojpeg -o "$work/turbojpeg.test" ./internal/imageproc

# clipline SIDE: images per CPU-second of BenchmarkDecode224 on one core.
# The benchmark reads its image from ../shared; CLIPLINE_BENCH_JPEG points
# it at IMAGE.
clipline() {
  (cd internal/imageproc && CLIPLINE_BENCH_JPEG=$(realpath "$OLDPWD/$image") GOMAXPROCS=1 \
    "$work/$1.test" -test.run '^$' -test.bench 'BenchmarkDecode224$' -test.benchtime 3s -test.cpu 1) |
    awk '/^BenchmarkDecode224/ { for (i = 3; i < NF; i++) if ($(i + 1) == "cpu-ms/image") v = 1000 / $i }
      END { if (v == "") exit 1; print v }'
}
pillow() {
  "$py" scripts/bench/pil_decode.py "$image" --seconds 3 |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["images_per_cpu_s"])'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $(go version)"
echo "# Pillow $("$py" -c 'import PIL; print(PIL.__version__)'), libjpeg-turbo $(dpkg-query -W -f '${Version}' libturbojpeg0 2>/dev/null || echo '?')"
echo "# image $image; images per CPU-second on one core"
echo "# load average at start: $(load)"
for r in $(seq 1 "$rounds"); do
  echo "# round $r, load average $(load)"
  echo "$r decode224 clipline_go $(clipline go)"
  echo "$r decode224 clipline_turbojpeg $(clipline turbojpeg)"
  echo "$r decode224 pillow $(pillow)"
done | tee "$work/raw"
echo "# load average at end: $(load)"
echo "# ratio clipline/Pillow: median [min-max] over the rounds"
awk -v a='^clipline' -v b='^pillow' -f scripts/bench/ratios.awk "$work/raw" | sort
