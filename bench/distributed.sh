#!/usr/bin/env bash
# Data-parallel training speed on this machine: `mpirun -np 2` ranks of one thread each
# against one process with 2 threads, the same DCGAN (64x64, nz 100, ngf = ndf = 64), the same
# global batch, Adam; alternated A B A B so that drift hits both. Prints each pair's images/s,
# the median ratio, and the share of the ranks' steps spent in the gradient all-reduce.
# Usage: bash bench/distributed.sh [BATCH] [STEPS] [PAIRS]   (needs OpenMPI: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-64}
steps=${2:-10}
pairs=${3:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/retrato/target}
cargo build --release --features native,distributed --quiet
retrato="$CARGO_TARGET_DIR/release/retrato"
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 --mca btl self,tcp
     --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -x RAYON_NUM_THREADS=1)
args=(bench train --family dcgan --batch "$batch" --steps "$steps" --json)
results=()
for _ in $(seq "$pairs"); do
  one=$(RAYON_NUM_THREADS=2 "$retrato" "${args[@]}")
  two=$(RAYON_NUM_THREADS=1 "${mpi[@]}" "$retrato" "${args[@]}")
  results+=("$one" "$two")
done
python3 - "${results[@]}" <<'PY'
import json, platform, statistics, sys, datetime
runs = [json.loads(r) for r in sys.argv[1:]]
pairs = list(zip(runs[0::2], runs[1::2]))
print(f"machine: {platform.processor() or platform.machine()}, {datetime.date.today()}, "
      f"DCGAN 64x64, global batch {runs[0]['batch']}, {runs[0]['steps']} timed steps per run")
print(f"{'pair':>4} {'1 process x 2 threads':>22} {'2 ranks x 1 thread':>19} {'ratio':>6} {'all-reduce share':>17}")
ratios = []
for i, (one, two) in enumerate(pairs, 1):
    ratio = two["images_per_s"] / one["images_per_s"]
    ratios.append(ratio)
    print(f"{i:>4} {one['images_per_s']:>17.1f} img/s {two['images_per_s']:>14.1f} img/s "
          f"{ratio:>5.2f}x {100 * two['communication_share']:>16.1f}%")
shares = [two["communication_share"] for _, two in pairs]
print(f"median ratio (2 ranks / 1 process): {statistics.median(ratios):.2f}x; "
      f"median all-reduce share: {100 * statistics.median(shares):.1f}% of the ranks' steps")
PY
