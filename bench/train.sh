#!/usr/bin/env bash
# Training speed, retrato against PyTorch, on this machine, in one run: the same DCGAN
# (64x64, nz 100, ngf = ndf = 64), batch, optimizer and step, the same number of threads.
# Usage: bash bench/train.sh [BATCH] [STEPS]     (needs python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-64}
steps=${2:-10}
threads=${THREADS:-$(nproc)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/retrato/target}
cargo build --release --features native --quiet
retrato="$CARGO_TARGET_DIR/release/retrato"
# burn's CPU backend and PyTorch both get exactly $threads threads.
ours=$(RAYON_NUM_THREADS=$threads "$retrato" bench train --family dcgan --batch "$batch" --steps "$steps" --json)
theirs=$(python3 bench/pytorch_dcgan.py --batch "$batch" --steps "$steps" --threads "$threads")
python3 - "$ours" "$theirs" <<'PY'
import json, platform, sys, datetime
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"machine: {platform.processor() or platform.machine()}, {ours['threads']} threads, {datetime.date.today()}")
print(f"{'':10} {'step s (median)':>16} {'images/s':>9} {'peak MiB':>9}")
for r in (ours, theirs):
    print(f"{r['tool']:10} {r['median_step_s']:>16.3f} {r['images_per_s']:>9.1f} {r['peak_rss_mib']:>9.0f}")
print(f"ratio retrato/pytorch (images/s): {ours['images_per_s'] / theirs['images_per_s']:.2f}x")
PY
