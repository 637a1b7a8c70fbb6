#!/usr/bin/env bash
# The embedded default (make -f pipeline.mk) on the GPU, with the prebuilt
# stage binaries, and its recall against the CPU run's report. Called by
# run.sh: default_gpu.sh BIN GPUDIR WORK LOG SECONDS
#   BIN     folder of the unpacked stage binaries (built with -tags cuda)
#   GPUDIR  .gpu/default: cpu_report.json from the CPU run (build.sh copies it)
#   WORK    scratch folder;  LOG  log file;  SECONDS  time limit
# pipeline.mk must take the device from DEVICE (train and embed --device).
# GO=true turns its build rule into a no-op, so make uses the binaries in BIN.
set -u
BIN=$1 GPUDIR=$2 WORK=$3 LOG=$4 LIMIT=$5
mkdir -p "$WORK"
if ! command -v make >/dev/null; then
	echo "make is not installed on this machine: embedded default skipped" >>"$LOG"
	exit 0
fi
if ! grep -q 'DEVICE' pipeline.mk; then
	echo "pipeline.mk does not pass \$(DEVICE) to train and embed: embedded default on the GPU skipped" >>"$LOG"
	exit 0
fi
if [ "$LIMIT" -lt 60 ]; then
	echo "only ${LIMIT}s left: embedded default skipped" >>"$LOG"
	exit 0
fi
echo "== make -f pipeline.mk on ${DEVICE:-cuda,bf16}" >>"$LOG"
t0=$SECONDS
timeout -k 10 "$LIMIT" make -f pipeline.mk GO=true BIN="$BIN" DEVICE="${DEVICE:-cuda,bf16}" \
	DATA="$WORK/data" OUT="$WORK/out/default" >>"$LOG" 2>&1
rc=$?
echo "== make exit $rc after $((SECONDS - t0))s" >>"$LOG"
[ $rc -eq 0 ] || exit 1
python3 - "$WORK/out/default/report.json" "$GPUDIR/cpu_report.json" >>"$LOG" 2>&1 <<'PY'
import json, sys
gpu = json.load(open(sys.argv[1]))
try:
    cpu = json.load(open(sys.argv[2]))
except Exception as e:
    cpu = None
    print("no CPU report to compare with (%s)" % e)
print("GPU report:", json.dumps(gpu))
bad = False
if cpu:
    for run in ("zero_shot", "fine_tuned"):
        for d in ("t2i", "i2t"):
            for k in ("r1", "r5", "r10"):
                g, c = gpu[run][d][k], cpu[run][d][k]
                ok = abs(g - c) <= 0.02
                bad |= not ok
                print("%-10s %s %-3s GPU %.3f CPU %.3f %s" % (run, d, k, g, c, "ok" if ok else "DIFFERS BY MORE THAN 2 POINTS"))
    print("seconds: GPU %.1f, CPU %.1f" % (gpu.get("seconds", 0), cpu.get("seconds", 0)))
sys.exit(1 if bad else 0)
PY
