# Installs what building and testing retrato needs, skipping whatever is already there.
# Sourced by scripts/serve.sh and scripts/test.sh; safe to run again and again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# A build cache outside the clone, shared by every checkout on this machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/retrato/target}"
# scripts/bin first: its wasm-opt caches binaryen's (node_modules/.bin) output.
export PATH="$ROOT/scripts/bin:$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
mkdir -p "$CARGO_TARGET_DIR"

TRUNK_VERSION="0.21.14"   # the last trunk that builds with rustc 1.95
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock to the patch.
WASM_BINDGEN_VERSION="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown && return
  step "adding the wasm32-unknown-unknown rust target"
  rustup target add wasm32-unknown-unknown
}

ensure_trunk() {
  if trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then return; fi
  step "installing trunk $TRUNK_VERSION (about 20 minutes on 2 cores, once)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
}

ensure_wasm_bindgen() {
  if wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then return; fi
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 10 minutes, once)"
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --force
}

# playwright-core drives Debian's chromium; binaryen gives a wasm-opt newer than Debian's 108,
# whose output Chromium rejects.
ensure_node_packages() {
  if [ -x node_modules/.bin/wasm-opt ] && [ -d node_modules/playwright-core ] \
     && [ node_modules/.package-lock.json -nt package-lock.json ]; then return; fi
  step "installing node packages (playwright-core, binaryen)"
  npm ci --no-audit --no-fund
}

ensure_chromium() {
  command -v chromium >/dev/null && return
  step "installing Debian's chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
}

# OpenMPI for data-parallel training (`--features native,distributed`, `mpirun`); the mpi
# crate's build reads the headers through libclang.
ensure_mpi() {
  if command -v mpirun >/dev/null && command -v mpicc >/dev/null \
     && ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then return; fi
  step "installing OpenMPI and libclang (openmpi-bin libopenmpi-dev libclang-dev)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    openmpi-bin libopenmpi-dev libclang-dev
}

# The page's wasm, JS glue and assets into dist/.
build_web() {
  ensure_wasm_target
  ensure_trunk
  ensure_wasm_bindgen
  ensure_node_packages
  # Two builds of the library: the CPU-only one the page loads first (dist/), and the WebGPU
  # one (flex + wgpu, --features webgpu) that takes over where a hardware GPU is offered
  # (dist/gpu/). They are built one after the other: both write the same cargo artefact.
  local gpu_dist="$CARGO_TARGET_DIR/dist-webgpu"
  step "building the page's WebGPU build (trunk build --release --features webgpu)"
  trunk build --release --features webgpu --dist "$gpu_dist"
  step "building the web app into dist/ (trunk build --release)"
  trunk build --release
  mkdir -p dist/gpu
  cp -f "$gpu_dist/retrato.js" "$gpu_dist/retrato_bg.wasm" dist/gpu/
  make_default_model
}

# The page's placeholder model: random DCGAN weights, f16, made by the CLI itself (gitignored,
# listed in www/models/models.json; the Rust tests of the shipped models read it too).
make_placeholder_model() {
  local model="$ROOT/www/models/random-dcgan-64.safetensors"
  if [ ! -s "$model" ]; then
    step "making the placeholder model (retrato init)"
    cargo run --release --features native --quiet -- init --family dcgan --f16 --seed 0 --out "$model"
  fi
}

make_default_model() {
  make_placeholder_model
  mkdir -p dist/www/models
  cp -f "$ROOT/www/models/random-dcgan-64.safetensors" dist/www/models/
}
