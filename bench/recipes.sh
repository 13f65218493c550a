#!/usr/bin/env bash
# Ranks candidate recipes for continuing a model at equal images seen: every candidate starts
# from the same model (and its discriminator where the candidate keeps that architecture),
# trains the same number of steps of batch 64 on the same data, then its EMA generator's FID
# on FID_N portraits against the held-out set (a few hundred are enough to rank). Prints a
# Markdown table (also written to OUT/table.md).
#
#   bash bench/recipes.sh OUT [STEPS] [FID_N] [CANDIDATE...]
#   e.g. bash bench/recipes.sh ~/.cache/retrato/recipes 320 500
#
# Defaults: celeba-64 from www/models, celeba64_train.tar, celeba64_test.npy ($MODEL, $DISC,
# $DATA, $REF, $CONFIG override them). Candidates are named below; pass names to run a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash bench/recipes.sh OUT [STEPS] [FID_N] [CANDIDATE...]}
steps=${2:-320}
fid_n=${3:-500}
shift $(($# < 3 ? $# : 3))
model=${MODEL:-www/models/celeba-64.safetensors}
disc=${DISC:-www/models/celeba-64.discriminator.safetensors}
data=${DATA:-../shared/data/celeba/celeba64_train.tar}
ref=${REF:-../shared/data/celeba/celeba64_test.npy}
config=${CONFIG:-configs/celeba-64.toml}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/retrato/target}
cargo build --release --features native --quiet
retrato="$CARGO_TARGET_DIR/release/retrato"

# name | keeps the trained discriminator (yes/no) | extra train arguments
candidates=(
  "bce-bn-d|yes|"
  "bce-r1-0.1|no|--set model.d_batch_norm=false --set train.r1_gamma=0.1"
  "bce-r1-1|no|--set model.d_batch_norm=false --set train.r1_gamma=1.0"
  "bce-bn-d-lr1e-4|yes|--set train.lr_g=1e-4 --set train.lr_d=1e-4"
  "bce-bn-d-cutout|yes|--set train.augment=[\"translation\",\"color\",\"cutout\"]"
)
wanted=("$@")
# Candidates train $JOBS at a time, each on nproc/JOBS threads (two 1-thread runs on 2 cores
# see ~35% more images per second in all than one 2-thread run); then FID one at a time.
jobs=${JOBS:-2}
threads=$(( $(nproc) / jobs )); ((threads > 0)) || threads=1
mkdir -p "$out"
picked=()
for entry in "${candidates[@]}"; do
  name=${entry%%|*}
  if ((${#wanted[@]})) && [[ ! " ${wanted[*]} " == *" $name "* ]]; then continue; fi
  picked+=("$entry")
done
train_one() {
  local name keep_d extra
  IFS='|' read -r name keep_d extra <<<"$1"
  local run="$out/$name" d_args=()
  # A finished candidate (an earlier call) is kept: only missing ones train.
  [[ -f $run.seconds && -f $run/model.safetensors ]] && return 0
  rm -rf "$run"
  if [[ $keep_d == yes ]]; then d_args=(--discriminator "$disc"); fi
  local start=$(date +%s)
  # shellcheck disable=SC2086 # $extra is a list of arguments
  RAYON_NUM_THREADS=$threads "$retrato" train --config "$config" --from "$model" "${d_args[@]}" \
    --data "$data" --out "$run" --max-steps "$steps" --set run.fid_epochs=0 $extra \
    >"$run.log" 2>&1 || { echo "$name: training failed, see $run.log" >&2; return 1; }
  echo $(($(date +%s) - start)) >"$run.seconds"
}
running=0
for entry in "${picked[@]}"; do
  train_one "$entry" &
  running=$((running + 1))
  if ((running >= jobs)); then wait -n || true; running=$((running - 1)); fi
done
wait || true

table="$out/table.md"
{
  echo "| recipe | from | images | wall min ($threads thread(s), $jobs at a time) | FID-$fid_n | KID | precision | recall |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$table"
# FID of a model file, kept beside it (FILE.fid-N.json) so that a second call reuses it.
fid_of() {
  local cached="$1.fid-$fid_n.json"
  [[ -s $cached ]] || "$retrato" eval fid --model "$1" --ref "$ref" --n "$fid_n" --seed 0 --json >"$cached"
  cat "$cached"
}
start_copy="$out/start.safetensors"
cp "$model" "$start_copy"
start_json=$(fid_of "$start_copy")
python3 - "$start_json" >>"$table" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"| (start: the model as it is) | | 0 | | {s['fid']:.1f} | {s['kid']:.4f} | {s['precision']:.3f} | {s['recall']:.3f} |")
PY
for entry in "${picked[@]}"; do
  IFS='|' read -r name keep_d extra <<<"$entry"
  run="$out/$name"
  [[ -f $run/model.safetensors ]] || { echo "| $name | failed | | | | | | |" >>"$table"; continue; }
  origin="G + D"; [[ $keep_d == yes ]] || origin="G, fresh D"
  json=$(fid_of "$run/model.safetensors")
  python3 - "$name" "$origin" "$steps" "$(cat "$run.seconds")" "$json" >>"$table" <<'PY'
import json, sys
name, origin, steps, wall, s = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
print(f"| {name} | {origin} | {steps * 64:,} | {wall / 60:.1f} | {s['fid']:.1f} | {s['kid']:.4f} | {s['precision']:.3f} | {s['recall']:.3f} |")
PY
  tail -1 "$table"
done
cat "$table"
