#!/usr/bin/env bash
# Sourced by the GPU checks: `source scripts/cuda-libs.sh NAS`. The binary NAS links libcublas.so.13,
# libcudart.so.13 and libcurand.so.10: where the loader does not find them, look in the usual places (a CUDA
# toolkit, or the nvidia-* wheels of a Python environment) and export LD_LIBRARY_PATH; returns 1 if some are
# still missing.
if ldd "$1" | grep -q 'not found'; then
    for lib in $(ldd "$1" | awk '/not found/{print $1}'); do
        hit=$(find /usr/local/cuda* /usr/local/nvidia /usr/lib /usr/local/lib /opt -name "$lib" 2>/dev/null | head -1)
        [ -n "$hit" ] && LD_LIBRARY_PATH="$(dirname "$hit")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    export LD_LIBRARY_PATH
    if ldd "$1" | grep 'not found'; then echo "FAILED: CUDA libraries missing (above)"; return 1; fi
fi
return 0
