#!/usr/bin/env bash
# A campaign session on a GPU machine without a Rust toolchain: the GPU speed table
# (bench/gpu.sh), then a time-boxed run on wgpu whose learning-rate decay the run places from
# its measured speed (`--decay-minutes`), then the run's outputs copied to $OUT (the reduced checkpoint, with Adam's
# moments, split into parts under 16 MB: `cat resume.part.* > resume.safetensors`).
# Run from the repository root:
#   RETRATO=path/to/retrato (built with --features gpu)  DATA=train.tar  RESUME=reduced.safetensors
#   OUT=folder  BUDGET=seconds for all of it (default 510)
#   bash campaign/gpu-session.sh
set -u
: "${RETRATO:?}" "${DATA:?}" "${RESUME:?}" "${OUT:?}"
T0=$(date +%s)
DEADLINE=$((T0 + ${BUDGET:-510}))
RETRATO=$RETRATO ROWS="$OUT/bench.jsonl" bash bench/gpu.sh "${BENCH_STEPS:-20}" 5 2>&1 |
    tee "$OUT/bench.txt"
speed=$(python3 -c '
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(next((r["images_per_s"] for r in rows
            if r["tool"] == "retrato" and r["device"] == "wgpu" and r["batch"] == 64), ""))
' "$OUT/bench.jsonl")
[ -z "$speed" ] && { echo "wgpu did not run: no training"; exit 1; }
left=$((DEADLINE - $(date +%s) - 45))
minutes=$(python3 -c "print(round($left / 60, 2))")
# The decay covers the box's last third, placed by the run itself from the speed of the
# minutes before it (after wgpu's autotuning, with augmentation, EMA and checkpoints).
decay=$(python3 -c "print(round($left / 60 / 3, 2))")
echo "time box $minutes min (benchmark: $speed images/s): decay over the last $decay min"
"$RETRATO" train --resume "$RESUME" --data "$DATA" --out /tmp/gpu-session-run --device wgpu \
    --max-minutes "$minutes" --decay-minutes "$decay" --keep-moments \
    --set run.fid_epochs=0 --set run.sample_epochs=20 --set run.checkpoint_minutes=2 \
    --set train.lr_decay_end=0 2>&1 |
    tr '\r' '\n' | tail -c 200000 >"$OUT/train.log"
tail -8 "$OUT/train.log"
cp /tmp/gpu-session-run/metrics.csv /tmp/gpu-session-run/model.safetensors "$OUT/"
split -b 15M /tmp/gpu-session-run/resume.safetensors "$OUT/resume.part."
echo "elapsed $(($(date +%s) - T0)) s"
