#!/usr/bin/env bash
# Cross-validated training speed, ours against PyTorch, in one run (see crates/evaluate/examples/cv_speed.rs).
# Installs PyTorch from PyPI into bench/.venv on first use (about 3 GB with its CUDA wheels), then runs the
# benchmark. Extra arguments go to the benchmark, e.g. `bench/run.sh --epochs 10`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c 'import torch' 2>/dev/null; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet torch
fi
cargo run --release --quiet -p evaluate --example cv_speed -- --python bench/.venv/bin/python "$@"
