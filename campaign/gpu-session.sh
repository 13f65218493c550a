#!/usr/bin/env bash
# A campaign session on a GPU machine without a Rust toolchain: the GPU speed table
# (bench/gpu.sh), then a time-boxed run on wgpu whose learning-rate decay is placed from the
# measured speed, then the run's outputs copied to $OUT (the reduced checkpoint, with Adam's
# moments, split into parts under 16 MB: `cat resume.part.* > resume.safetensors`).
# Run from the repository root:
#   RETRATO=path/to/retrato (built with --features gpu)  DATA=train.tar  RESUME=reduced.safetensors
#   STEP0=its step  OUT=folder  BUDGET=seconds for all of it (default 510)
#   bash campaign/gpu-session.sh
set -u
: "${RETRATO:?}" "${DATA:?}" "${RESUME:?}" "${STEP0:?}" "${OUT:?}"
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
# The decay covers the last third of the steps the time box should hold at 80 % of the
# benchmark's pace (the run also augments, keeps the EMA and writes checkpoints).
steps=$(python3 -c "print(int($speed * $left * 0.8 / 64))")
start=$((STEP0 + steps * 65 / 100))
end=$((STEP0 + steps * 97 / 100))
echo "time box $minutes min, about $steps steps: decay over steps $start..$end"
"$RETRATO" train --resume "$RESUME" --data "$DATA" --out /tmp/gpu-session-run --device wgpu \
    --max-minutes "$minutes" --keep-moments \
    --set run.fid_epochs=0 --set run.sample_epochs=20 --set run.checkpoint_minutes=2 \
    --set train.lr_decay_start=$start --set train.lr_decay_end=$end 2>&1 |
    tr '\r' '\n' | tail -c 200000 >"$OUT/train.log"
tail -8 "$OUT/train.log"
cp /tmp/gpu-session-run/metrics.csv /tmp/gpu-session-run/model.safetensors "$OUT/"
split -b 15M /tmp/gpu-session-run/resume.safetensors "$OUT/resume.part."
echo "elapsed $(($(date +%s) - T0)) s"
