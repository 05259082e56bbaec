#!/usr/bin/env bash
# Cross-validated training speed, ours against PyTorch, in one run (see crates/evaluate/examples/cv_speed.rs).
# PyTorch comes from the virtual environment scripts/check-export.sh keeps outside the clone (installed on first
# use, about 5.5 GB with torch's CUDA wheels). Extra arguments go to the benchmark, e.g.
# `bench/run.sh --epochs 10` or `bench/run.sh --only 28×28 --fashion PATH/fashion10k.csv.gz`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NAS_PY_VENV:-$HOME/.cache/nas-pyexport}
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch==2.15.0 numpy==2.4.6
fi
cargo run --release --quiet -p evaluate --example cv_speed -- --python "$venv/bin/python" "$@"
