#!/usr/bin/env bash
# Makes a CUDA 13.0 build environment from PyPI wheels on a machine with no CUDA toolkit and no GPU, so that
# candle's `cuda` feature (candle-kernels runs nvcc at build time; cudarc links the CUDA libraries) builds.
# Usage:  source scripts/setup-nvcc.sh [PREFIX]   (PREFIX default: $HOME/.cache/nas-cuda13)
# Afterwards: cargo build --release --features cuda   (about 14 minutes on 2 cores the first time, for the kernels)
# Measured 2026-11-28 with candle-core 0.11.1 / cudarc 0.19.10: a fresh release build took 15m50s (PTX 9.0). The binary links libcuda.so.1, libcublas.so.13,
# libcudart.so.13 and libcurand.so.10: on a GPU machine they come from the driver and the CUDA toolkit there.
PREFIX=${1:-$HOME/.cache/nas-cuda13}
if [ ! -x "$PREFIX/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip install -q --target "$PREFIX" nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.88 \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 "nvidia-cublas<13.1" "nvidia-curand<10.4.1" \
    "nvidia-cuda-cccl<13.1" || return 1 2>/dev/null || exit 1
fi
CU=$PREFIX/nvidia/cu13
# unversioned names for the linker; the wheels ship only .so.N
( cd "$CU/lib" && for l in cublas cublasLt nvrtc cudart; do ln -sf "lib$l.so.13" "lib$l.so"; done && ln -sf libcurand.so.10 libcurand.so )
# a link-time stand-in for the driver library (no wheel ships libcuda.so): every entry returns CUDA_ERROR_NO_DEVICE
if [ ! -f "$CU/lib/stubs/libcuda.so" ]; then
  mkdir -p "$CU/lib/stubs"
  src=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.* 2>/dev/null | head -1)
  if [ -z "$src" ]; then echo "setup-nvcc: fetch the crates first (cargo fetch), then source this again" >&2; return 1 2>/dev/null || exit 1; fi
  grep -ohP '^\s+fn \Kcu\w+(?=\()' "$src/src/driver/sys/mod.rs" | sort -u |
    awk '{print "int " $1 "(void) { return 100; }"}' > "$CU/lib/stubs/libcuda_stub.c"
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$CU/lib/stubs/libcuda.so" "$CU/lib/stubs/libcuda_stub.c"
  ln -sf libcuda.so "$CU/lib/stubs/libcuda.so.1"
fi
export PATH=$CU/bin:$PATH
export CUDA_ROOT=$CU CUDA_HOME=$CU CUDA_PATH=$CU
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}   # no nvidia-smi here; H100/H200 = sm_90
# to start a cuda build here (it then reports no device and can fall back to CPU):
#   LD_LIBRARY_PATH=$CU/lib:$CU/lib/stubs ./target/release/nas ...
