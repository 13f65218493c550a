#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, the wasm build, and the browser tests in
# headless Debian chromium. Installs what it needs first (skipping what is there).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy (native, native with MPI, wasm32), warnings are errors"
ensure_wasm_target
ensure_mpi
cargo clippy --release --features native --all-targets -- -D warnings
cargo clippy --release --features native,distributed --all-targets -- -D warnings
cargo clippy --release --target wasm32-unknown-unknown -- -D warnings
cargo clippy --release --target wasm32-unknown-unknown --features webgpu -- -D warnings

make_placeholder_model
step "cargo test --release --features native"
cargo test --release --features native
# The data-parallel tests (mpirun -np 2), the only ones that need the MPI build; its binary
# (a superset of the plain one) is also what the browser tests below call.
step "cargo test --release --features native,distributed distributed (mpirun -np 2)"
cargo test --release --features native,distributed --test suite distributed

build_web
ensure_chromium
step "browser tests (node --test tests/e2e, headless chromium)"
node --test --test-reporter=spec tests/e2e/
