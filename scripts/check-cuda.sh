#!/usr/bin/env bash
# Builds the `cuda` feature without a GPU, so the CUDA path never silently rots (run by .ci/run).
#   scripts/check-cuda.sh           # cargo check --features cuda (nvcc compiles candle's kernels: ~10 min on 2 cores)
#   scripts/check-cuda.sh build     # cargo build --release --features cuda -> target/cuda/release/nas (~16 min)
# nvcc and the CUDA 13.0 libraries come from PyPI wheels (scripts/setup-nvcc.sh). The release binary needs the
# CUDA 13 libraries where it runs; here it finds no device and trains on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --quiet
# shellcheck source=setup-nvcc.sh
source scripts/setup-nvcc.sh "$HOME/.cache/nas-cuda13"   # named: a sourced script sees this script's arguments
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
if [ "${1:-check}" = build ]; then
    cargo build --release --features cuda -p nas-cli
    echo "built $CARGO_TARGET_DIR/release/nas"
else
    cargo check --features cuda -p nas-cli -p nn -p evaluate --all-targets
fi
