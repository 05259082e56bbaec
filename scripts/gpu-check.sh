#!/usr/bin/env bash
# The prepared GPU check, for a machine with an NVIDIA GPU and the CUDA 13 driver (no Rust needed there):
#   here:  scripts/check-cuda.sh build        # -> target/cuda/release/nas (and the GPU test binary, below)
#   there: NAS=path/to/nas [EVAL_TESTS=path/to/evaluate-test-binary] [NN_TESTS=path/to/nn-test-binary] [WORK=dir] scripts/gpu-check.sh
# It prints: the devices; the GPU unit test (CPU/GPU agreement of per-fold accuracy) when EVAL_TESTS is given;
# a CPU-vs-GPU agreement check of a whole search on the built-in digits (same winner, per-fold accuracies within
# 0.02); and a benchmark: one batch of candidates from the default space evaluated on the CPU and on the GPU,
# candidates/s and samples/s for each, the ratio, and GPU utilisation sampled by nvidia-smi meanwhile; then
# a larger batch on the GPU alone (BIG candidates), to show how its throughput grows with the batch.
# Meant to finish in under 8 minutes on an H100; it took 80-90 s on an H200 machine (16 cores).
set -uo pipefail
NAS=${NAS:-nas}
OUT=${WORK:-$(mktemp -d)}
BATCH=${BATCH:-16}
BIG=${BIG:-48}
EPOCHS=${EPOCHS:-4}
GPU=${GPU:-cuda}   # GPU=cpu: a dry run of this script on a machine without a GPU
status=0
say() { echo "== $*"; }
# GPU utilisation and memory, sampled every 0.5 s into $1 until killed (run it with &: exec makes $! the sampler); `utilisation FILE` summarises them.
sample_gpu() { exec nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 > "$1" 2>/dev/null; }
utilisation() {
    [ -s "$1" ] && awk -F', ' '{u+=$1; if ($1>m) m=$1; if ($2>mm) mm=$2; n++} END {
        printf "GPU utilisation: mean %.0f%%, peak %d%% (%d samples); peak memory %d MiB\n", u/n, m, n, mm}' "$1"
}

# shellcheck source=cuda-libs.sh
source "$(dirname "$0")/cuda-libs.sh" "$NAS" || exit 1

say "devices"
echo "$(nproc) CPU cores: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
"$NAS" devices || status=1
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>/dev/null || true

if [ -n "${EVAL_TESTS:-}" ]; then
    say "GPU unit test (evaluate: gpu_and_cpu_agree)"
    "$EVAL_TESTS" --test-threads 1 --nocapture gpu_and_cpu_agree || status=1
fi
if [ -n "${NN_TESTS:-}" ]; then
    say "GPU unit test (nn: devices)"
    "$NN_TESTS" --test-threads 1 --nocapture cpu_and_auto || status=1
fi

say "agreement: the same search on cpu and cuda (built-in digits, budget 8, 3 epochs, seed 11)"
for side in cpu gpu; do
    dev=$([ "$side" = cpu ] && echo cpu || echo "$GPU")
    t0=$(date +%s.%N)
    if ! "$NAS" run --quiet --no-retrain --device "$dev" --out "$OUT/agree-$side" --budget 8 --epochs 3 --seed 11; then
        echo "FAILED: the search on $dev"; exit 1
    fi
    awk -v s="$side ($dev)" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%s: %.1f s\n", s, b - a}'
done
best() { awk '/^\[best\]/{b=1} b&&/^id =/{print $3; exit}' "$1/selection.toml"; }
folds() { awk '/^\[best\]/{b=1} b&&/^fold_scores/{print; exit}' "$1/selection.toml"; }
echo "cpu winner: c$(best "$OUT/agree-cpu") $(folds "$OUT/agree-cpu")"
echo "gpu winner: c$(best "$OUT/agree-gpu") $(folds "$OUT/agree-gpu")"
if [ "$(best "$OUT/agree-cpu")" != "$(best "$OUT/agree-gpu")" ]; then
    echo "DISAGREE: different winners"; status=1
fi
# Per-candidate, per-fold differences over the folds both sides trained: racing is CPU-only (grouped GPU folds
# train together), so a candidate raced out on the CPU has only its first folds there.
echo "raced out on the cpu: $(grep -l '^status = "stopped"' "$OUT"/agree-cpu/results/c*.toml 2>/dev/null | wc -l) (the gpu trains every fold)"
maxdiff=$(for f in "$OUT"/agree-cpu/results/c*.toml; do
    g="$OUT/agree-gpu/results/$(basename "$f")"
    paste <(grep '^fold_scores' "$f" | tr -d '[]a-z_= ' | tr ',' '\n') \
          <(grep '^fold_scores' "$g" | tr -d '[]a-z_= ' | tr ',' '\n')
done | awk -F'\t' '$1 != "" && $2 != "" {d=$1-$2; if (d<0) d=-d; if (d>m) m=d} END {printf "%.4f", m}')
echo "largest per-fold accuracy difference cpu vs gpu (folds both trained): $maxdiff"
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
sample_gpu "$OUT/util.csv" &
smi=$!
gpu_ok=1
"$NAS" evaluate --quiet --device "$GPU" "$OUT/bench-gpu" >/dev/null || gpu_ok=0
t2=$(date +%s.%N)
kill "$smi" 2>/dev/null
if [ "$gpu_ok" = 0 ]; then echo "FAILED: nas evaluate --device $GPU"; exit 1; fi
awk -v n="$BATCH" -v rows="$rows" -v ep="$EPOCHS" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    cpu = b - a; gpu = c - b; samples = n * 5 * rows * 4 / 5 * ep;
    printf "cpu: %.1f s, %.3f candidates/s, %.0f samples/s\n", cpu, n / cpu, samples / cpu;
    printf "gpu: %.1f s, %.3f candidates/s, %.0f samples/s\n", gpu, n / gpu, samples / gpu;
    printf "gpu / cpu: %.2fx\n", cpu / gpu }'
utilisation "$OUT/util.csv"
ok=$(grep -l 'status = "ok"' "$OUT"/bench-gpu/results/c*.toml 2>/dev/null | wc -l)
echo "gpu results ok: $ok of $BATCH"
[ "$ok" = "$BATCH" ] || status=1
# The same batch by 4 worker processes sharing the run directory (kernel launches serialise within a process).
cp -r "$OUT/bench" "$OUT/bench-workers"
t3=$(date +%s.%N)
for i in 1 2 3 4; do "$NAS" evaluate --quiet --worker --device "$GPU" "$OUT/bench-workers" >/dev/null 2>&1 & done
wait
t4=$(date +%s.%N)
awk -v n="$BATCH" -v a="$t0" -v b="$t1" -v c="$t3" -v d="$t4" 'BEGIN {
    printf "gpu, 4 worker processes: %.1f s, %.3f candidates/s, %.2fx the cpu\n", d - c, n / (d - c), (b - a) / (d - c) }'
grep -h '^wall_s' "$OUT"/bench-gpu/results/c*.toml | awk '{s+=$3; n++} END {printf "gpu: mean wall per candidate (5 folds batched) %.2f s\n", s/n}'
grep -h '^wall_s' "$OUT"/bench-cpu/results/c*.toml | awk '{s+=$3; n++} END {printf "cpu: mean summed fold time per candidate %.2f s\n", s/n}'

say "GPU alone: a batch of $BIG candidates"
printf 'seed = 5\n[search]\nbudget = %s\nbatch = %s\n[evaluate]\nepochs = %s\n' "$BIG" "$BIG" "$EPOCHS" > "$OUT/big.toml"
"$NAS" space --config "$OUT/big.toml" --out "$OUT/big" >/dev/null && "$NAS" generate "$OUT/big" >/dev/null || status=1
sample_gpu "$OUT/util-big.csv" &
smi=$!
t0=$(date +%s.%N)
"$NAS" evaluate --quiet --device "$GPU" "$OUT/big" >/dev/null || status=1
t1=$(date +%s.%N)
kill "$smi" 2>/dev/null
awk -v n="$BIG" -v a="$t0" -v b="$t1" 'BEGIN {printf "gpu, %d candidates: %.1f s, %.3f candidates/s\n", n, b - a, n / (b - a)}'
utilisation "$OUT/util-big.csv"
echo "outputs in $OUT"
exit $status
