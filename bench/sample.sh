#!/usr/bin/env bash
# Generation speed, retrato against PyTorch, on this machine, in one run: the DCGAN generator
# (64x64, nz 100, ngf 64) in inference mode, batches of 64, images read back to the host, the
# same number of threads; each tool alternately, ROUNDS times.
# Usage: bash bench/sample.sh [N] [RUNS] [ROUNDS]     (needs python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-64}
runs=${2:-5}
rounds=${3:-3}
threads=${THREADS:-$(nproc)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/retrato/target}
cargo build --release --features native --quiet
retrato="$CARGO_TARGET_DIR/release/retrato"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $threads threads, $(date -u +%F), $n images per run"
for round in $(seq "$rounds"); do
    ours=$(RAYON_NUM_THREADS=$threads "$retrato" bench sample --n "$n" --runs "$runs" --json)
    theirs=$(python3 bench/pytorch_dcgan.py --sample "$n" --runs "$runs" --threads "$threads")
    python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"retrato {ours['images_per_s']:8.1f} images/s ({ours['peak_rss_mib']:.0f} MiB)   "
      f"pytorch {theirs['images_per_s']:8.1f} images/s ({theirs['peak_rss_mib']:.0f} MiB)   "
      f"ratio {ours['images_per_s'] / theirs['images_per_s']:.2f}x")
PY
done
