#!/usr/bin/env bash
# One-off: the default conv space on 32x32x3 images (4000 synthetic rows), cpu vs gpu, 1 epoch, 8 candidates.
set -uo pipefail
NAS=${NAS:-nas}; W=${WORK:-/tmp/big}; mkdir -p $W
python3 - "$W/img.csv" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
n, d = 4000, 3 * 32 * 32
X = rng.normal(size=(n, d)).astype(np.float32)
y = (X @ rng.normal(size=(d, 10))).argmax(1)
with open(sys.argv[1], 'w') as f:
    f.write(','.join([f'f{i}' for i in range(d)] + ['label']) + '\n')
    np.savetxt(f, np.column_stack([X, y]), fmt='%.3g', delimiter=',')
PY
printf 'seed = 3\n[data]\nsource = "img.csv"\nlabel = "label"\nshape = [3, 32, 32]\n[search]\nbudget = 8\nbatch = 8\n[evaluate]\nepochs = 1\n' > $W/exp.toml
$NAS space --config $W/exp.toml --out $W/run || exit 1
$NAS generate $W/run >/dev/null || exit 1
cp -r $W/run $W/cpu; cp -r $W/run $W/gpu
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 300 > $W/util & s=$!
t0=$(date +%s.%N); timeout 60 $NAS evaluate --quiet --device cuda $W/gpu >/dev/null; t1=$(date +%s.%N); kill $s
awk -v a=$t0 -v b=$t1 -v n=$(ls $W/gpu/results | wc -l) 'BEGIN {printf "gpu: %d candidates in %.1f s: %.3f candidates/s\n", n, b-a, n/(b-a)}'
awk -F', ' '{u+=$1; if ($2>m) m=$2; n++} END {printf "   GPU utilisation mean %.0f%%, peak memory %d MiB\n", u/n, m}' $W/util
t0=$(date +%s.%N); timeout 90 $NAS evaluate --quiet --device cpu $W/cpu >/dev/null; t1=$(date +%s.%N)
awk -v a=$t0 -v b=$t1 -v n=$(ls $W/cpu/results | wc -l) 'BEGIN {printf "cpu: %d candidates in %.1f s: %.3f candidates/s\n", n, b-a, n/(b-a)}'
for f in $W/gpu/results/*.toml; do g=$W/cpu/results/$(basename $f); [ -f $g ] && echo "$(basename $f .toml): gpu $(grep ^cv_mean $f | cut -d' ' -f3) cpu $(grep ^cv_mean $g | cut -d' ' -f3) $(grep ^arch $f)"; done
grep -h '^status\|^error' $W/gpu/results/*.toml | sort | uniq -c
