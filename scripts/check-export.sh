#!/usr/bin/env bash
# Checks the ONNX and PyTorch exports against nas's own predictions (run by .ci/run): builds nas, installs
# onnx, onnxruntime and PyTorch (CPU use; about 5.5 GB with torch's CUDA wheels) into a virtual environment
# cached outside the clone, and runs scripts/check_export.py.
#   scripts/check-export.sh [VENV]     # default VENV: ~/.cache/nas-pyexport
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-$HOME/.cache/nas-pyexport}
packages=(torch==2.15.0 onnx==1.23.2 onnxruntime==1.32.0 safetensors==0.8.0 numpy==2.4.6)
if ! "$venv/bin/python" -c 'import torch, onnx, onnxruntime, safetensors, numpy' 2>/dev/null; then
    python3 -m venv "$venv" 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv \
        && rm -rf "$venv" && python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet "${packages[@]}"
fi
cargo build --quiet -p nas-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" scripts/check_export.py "$PWD/target/debug/nas" "$work"
