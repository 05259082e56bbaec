#!/usr/bin/env bash
# The prepared GPU check, for a machine with an NVIDIA GPU and the CUDA 13 driver (no Rust needed there):
#   here:  scripts/check-cuda.sh build        # -> target/cuda/release/nas (and the GPU test binary, below)
#   there: NAS=path/to/nas [EVAL_TESTS=path/to/evaluate-test-binary] scripts/gpu-check.sh
# It prints: the devices; the GPU unit test (CPU/GPU agreement of per-fold accuracy) when EVAL_TESTS is given;
# a CPU-vs-GPU agreement check of a whole search on the built-in digits (same winner, per-fold accuracies within
# 0.02); and a benchmark: one batch of candidates from the default space evaluated on the CPU and on the GPU,
# candidates/s and samples/s for each, the ratio, and GPU utilisation sampled by nvidia-smi meanwhile.
# Meant to finish in under 8 minutes on an H100.
set -uo pipefail
NAS=${NAS:-nas}
OUT=${OUT:-$(mktemp -d)}
BATCH=${BATCH:-16}
EPOCHS=${EPOCHS:-4}
status=0
say() { echo "== $*"; }

say "devices"
"$NAS" devices || status=1
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>/dev/null || true

if [ -n "${EVAL_TESTS:-}" ]; then
    say "GPU unit test (evaluate::tests::gpu_and_cpu_agree)"
    "$EVAL_TESTS" gpu_and_cpu_agree --nocapture || status=1
fi

say "agreement: the same search on cpu and cuda (built-in digits, budget 8, 3 epochs, seed 11)"
for dev in cpu cuda; do
    if ! /usr/bin/time -f "$dev: %e s" "$NAS" run --quiet --no-retrain --device "$dev" --out "$OUT/agree-$dev" \
        --budget 8 --epochs 3 --seed 11; then
        echo "FAILED: the search on $dev"; exit 1
    fi
done
best() { awk '/^\[best\]/{b=1} b&&/^id =/{print $3; exit}' "$1/selection.toml"; }
folds() { awk '/^\[best\]/{b=1} b&&/^fold_scores/{print; exit}' "$1/selection.toml"; }
echo "cpu winner: c$(best "$OUT/agree-cpu") $(folds "$OUT/agree-cpu")"
echo "gpu winner: c$(best "$OUT/agree-cuda") $(folds "$OUT/agree-cuda")"
if [ "$(best "$OUT/agree-cpu")" != "$(best "$OUT/agree-cuda")" ]; then
    echo "DISAGREE: different winners"; status=1
fi
# Per-candidate, per-fold differences over all results.
maxdiff=$(for f in "$OUT"/agree-cpu/results/c*.toml; do
    g="$OUT/agree-cuda/results/$(basename "$f")"
    paste <(grep '^fold_scores' "$f" | tr -d '[]a-z_= ' | tr ',' '\n') \
          <(grep '^fold_scores' "$g" | tr -d '[]a-z_= ' | tr ',' '\n')
done | awk '{d=$1-$2; if (d<0) d=-d; if (d>m) m=d} END {printf "%.4f", m}')
echo "largest per-fold accuracy difference cpu vs gpu: $maxdiff"
awk -v m="$maxdiff" 'BEGIN {exit !(m < 0.02)}' || { echo "DISAGREE: per-fold difference >= 0.02"; status=1; }

say "benchmark: one batch of $BATCH candidates from the default space, 5-fold CV, $EPOCHS epochs"
printf '[search]\nbudget = %s\nbatch = %s\n[evaluate]\nepochs = %s\n' "$BATCH" "$BATCH" "$EPOCHS" > "$OUT/bench.toml"
"$NAS" space --config "$OUT/bench.toml" --out "$OUT/bench" >/dev/null || status=1
"$NAS" generate "$OUT/bench" || status=1
cp -r "$OUT/bench" "$OUT/bench-cpu"
cp -r "$OUT/bench" "$OUT/bench-gpu"
rows=$(awk -F' = ' '/^rows/{print $2; exit}' "$OUT/bench/space.toml")
t0=$(date +%s.%N)
"$NAS" evaluate --quiet --device cpu "$OUT/bench-cpu" >/dev/null || status=1
t1=$(date +%s.%N)
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/util.csv" 2>/dev/null &
smi=$!
gpu_ok=1
"$NAS" evaluate --quiet --device cuda "$OUT/bench-gpu" >/dev/null || gpu_ok=0
t2=$(date +%s.%N)
kill "$smi" 2>/dev/null
if [ "$gpu_ok" = 0 ]; then echo "FAILED: nas evaluate --device cuda"; exit 1; fi
awk -v n="$BATCH" -v rows="$rows" -v ep="$EPOCHS" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    cpu = b - a; gpu = c - b; samples = n * 5 * rows * 4 / 5 * ep;
    printf "cpu: %.1f s, %.3f candidates/s, %.0f samples/s\n", cpu, n / cpu, samples / cpu;
    printf "gpu: %.1f s, %.3f candidates/s, %.0f samples/s\n", gpu, n / gpu, samples / gpu;
    printf "gpu / cpu: %.2fx\n", cpu / gpu }'
if [ -s "$OUT/util.csv" ]; then
    awk -F', ' '{u+=$1; if ($1>m) m=$1; if ($2>mm) mm=$2; n++} END {printf "GPU utilisation during the GPU run: mean %.0f%%, peak %d%% (%d samples); peak memory %d MiB\n", u/n, m, n, mm}' "$OUT/util.csv"
fi
ok=$(grep -l 'status = "ok"' "$OUT"/bench-gpu/results/c*.toml 2>/dev/null | wc -l)
echo "gpu results ok: $ok of $BATCH"
[ "$ok" = "$BATCH" ] || status=1
echo "outputs in $OUT"
exit $status
