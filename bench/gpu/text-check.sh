#!/usr/bin/env bash
# One-off (2026-12-04): the two things built since the last GPU check, on a GPU, each on the CPU (all cores) and
# the GPU of one machine, the same candidates:
#   1. text with 1-D convolutions over the words (Austen's novels; a space of mostly word convolutions, 4
#      candidates, 3 folds, 2 epochs): per-fold accuracies within 0.02 (text folds train one by one on a GPU).
#   2. 28×28 images with the image defaults of 2026-12-04 (fashion10k; the first batch, the textbook CNN of
#      widths 32 and 64, 5 folds, 2 epochs): agreement, and the time of each (the GPU grouping the folds).
#   NAS=path/to/nas AUSTEN=austen.csv.gz FASHION=fashion10k.csv.gz [WORK=dir] bench/gpu/text-check.sh
set -uo pipefail
NAS=${NAS:-nas}; W=${WORK:-$(mktemp -d)}; mkdir -p "$W"
# shellcheck source=../../scripts/cuda-libs.sh
source "$(dirname "$0")/../../scripts/cuda-libs.sh" "$NAS" || exit 1
status=0
# evaluate NAME RUN: the run's pending candidates on the cpu and on the gpu (copies), timed.
evaluate() {
    cp -r "$2" "$W/$1-cpu"; cp -r "$2" "$W/$1-gpu"
    for side in cpu gpu; do
        dev=$([ $side = cpu ] && echo cpu || echo "${GPU:-cuda}")
        t0=$(date +%s.%N)
        "$NAS" evaluate --quiet --device "$dev" "$W/$1-$side" >/dev/null || { echo "FAILED: $1 on $dev"; status=1; }
        awk -v s="$1 $side" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%s: %.1f s\n", s, b - a}'
    done
    for f in "$W/$1-cpu"/results/c*.toml; do
        g="$W/$1-gpu/results/$(basename "$f")"
        echo "$(basename "$f" .toml) $(grep -h '^arch' "$f")"
        echo "  cpu $(grep '^fold_scores' "$f")"; echo "  gpu $(grep '^fold_scores' "$g" 2>/dev/null)"
        paste <(grep '^fold_scores' "$f" | tr -d '[]a-z_= ' | tr ',' '\n') \
              <(grep '^fold_scores' "$g" 2>/dev/null | tr -d '[]a-z_= ' | tr ',' '\n')
    done | tee "$W/$1-pairs" | grep -v $'^[0-9.]*\t[0-9.]*$'
    m=$(awk -F'\t' 'NF == 2 && $1 != "" && $2 != "" {d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.4f", m}' "$W/$1-pairs")
    echo "$1: largest per-fold accuracy difference cpu vs gpu: $m"
    awk -v m="$m" 'BEGIN {exit !(m < 0.02)}' || { echo "DISAGREE ($1)"; status=1; }
}

echo "== devices"; "$NAS" devices; echo "$(nproc) CPU cores"
echo "== 1. text: word convolutions"
cp "$AUSTEN" "$W/austen.csv.gz"
printf 'seed = 2\n[data]\nsource = "austen.csv.gz"\nlabel = "novel"\n[space]\ndepth = [1, 2]\nwidth = [32, 64]\n[search]\nbudget = 4\nbatch = 4\n[evaluate]\nfolds = 3\nepochs = 2\n' > "$W/text.toml"
"$NAS" space --config "$W/text.toml" --out "$W/text" >/dev/null && "$NAS" generate "$W/text" >/dev/null || exit 1
evaluate text "$W/text"
echo "== 2. 28x28 images: the default first batch"
cp "$FASHION" "$W/fashion.csv.gz"
printf '[data]\nsource = "fashion.csv.gz"\nshape = [1, 28, 28]\n[evaluate]\nepochs = 2\n' > "$W/img.toml"
"$NAS" space --config "$W/img.toml" --out "$W/img" >/dev/null && "$NAS" generate "$W/img" >/dev/null || exit 1
evaluate img "$W/img"
exit $status
