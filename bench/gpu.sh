#!/usr/bin/env bash
# Training speed on a GPU, in one run: retrato's wgpu backend against PyTorch on CUDA, the
# DCGAN of bench/train.sh (64x64, nz 100, ngf = ndf = 64, Adam, D on real + fake then G) at
# batch 64 and 256. Each row is the median step over STEPS timed steps after WARMUP; GPU
# memory is the peak nvidia-smi saw during the run, over what was in use before it.
# Usage: bash bench/gpu.sh [STEPS] [WARMUP]
#   RETRATO: a retrato built with --features gpu (default: the release build in
#   $CARGO_TARGET_DIR); python3 with a CUDA build of torch; nvidia-smi.
#   ROWS: a file to keep the measurements in, one JSON line each (for scripts).
set -uo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
warmup=${2:-5}
retrato=${RETRATO:-${CARGO_TARGET_DIR:-$HOME/.cache/retrato/target}/release/retrato}
rows=${ROWS:-$(mktemp)}
: >"$rows"
memory=$(mktemp)

# One benchmark (a command printing one JSON line), with the GPU memory it took added.
row() {
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$memory" &
    local sampler=$! line
    sleep 0.3
    line=$(timeout 300 "$@")
    local status=$?
    kill "$sampler"
    wait "$sampler" 2>/dev/null
    if [ $status -eq 0 ]; then
        echo "$line" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
used = [int(v) for v in open(sys.argv[1]).read().split() if v.isdigit()]
r["gpu_mib"] = max(used) - used[0] if used else None
print(json.dumps(r))' "$memory" >>"$rows"
    else
        echo "failed: $*" >&2
    fi
}

for batch in 64 256; do
    # A backend that cannot start (no driver) prints why and the table goes on.
    row "$retrato" bench train --family dcgan --batch "$batch" --steps "$steps" \
        --warmup "$warmup" --device wgpu --json
    row python3 bench/pytorch_dcgan.py --batch "$batch" --steps "$steps" --warmup "$warmup" \
        --device cuda
done
python3 - "$rows" <<'PY'
import json, sys, datetime, subprocess
rows = [json.loads(line) for line in open(sys.argv[1])]
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip()
versions = sorted({r["torch"] for r in rows if "torch" in r})
print(f"GPU: {gpu or '?'}, {datetime.date.today()}, torch {', '.join(versions) or '?'}")
print(f"{'tool':8} {'device':6} {'batch':>5} {'step ms (median)':>17} {'images/s':>9} {'GPU MiB':>8} {'vs pytorch':>10}")
torch = {r["batch"]: r["images_per_s"] for r in rows if r["tool"] == "pytorch"}
for r in sorted(rows, key=lambda r: (r["batch"], r["tool"] != "pytorch")):
    ratio = r["images_per_s"] / torch[r["batch"]] if r["batch"] in torch else float("nan")
    print(f"{r['tool']:8} {r['device']:6} {r['batch']:>5} {r['median_step_s'] * 1e3:>17.1f} "
          f"{r['images_per_s']:>9.0f} {r.get('gpu_mib') or '?':>8} {ratio:>9.2f}x")
PY
