#!/usr/bin/env bash
# One-off (2026-12-04): augmentation and per-channel standardisation on a GPU. The built-in digits with
# `augment = "shift_flip"`, 4 candidates x 2 epochs, on the CPU and on the GPU (folds grouped there, each
# augmented batch made on the host): the per-fold accuracies must agree as the plain path's do (< 0.02).
set -uo pipefail
NAS=${NAS:-nas}; W=${WORK:-$(mktemp -d)}; mkdir -p "$W"
printf 'seed = 4\n[search]\nbudget = 4\nbatch = 4\n[evaluate]\nepochs = 2\naugment = "shift_flip"\n' > "$W/aug.toml"
"$NAS" space --config "$W/aug.toml" --out "$W/run" >/dev/null || exit 1
grep -E '^(standardize|augment)' "$W/run/space.toml"
"$NAS" generate "$W/run" >/dev/null || exit 1
cp -r "$W/run" "$W/cpu"; cp -r "$W/run" "$W/gpu"
for side in cpu gpu; do
    dev=$([ $side = cpu ] && echo cpu || echo "${GPU:-cuda}")
    t0=$(date +%s.%N); "$NAS" evaluate --quiet --device $dev "$W/$side" >/dev/null || { echo "FAILED: evaluate on $dev"; exit 1; }
    awk -v s=$side -v a=$t0 -v b="$(date +%s.%N)" 'BEGIN {printf "%s: %.1f s\n", s, b - a}'
done
status=0
for f in "$W"/cpu/results/c*.toml; do
    g="$W/gpu/results/$(basename "$f")"
    echo "$(basename "$f" .toml) $(grep -h '^evaluator' "$f" "$g" | tr '\n' ' ')"
    echo "  cpu $(grep '^fold_scores' "$f")"; echo "  gpu $(grep '^fold_scores' "$g")"
    paste <(grep '^fold_scores' "$f" | tr -d '[]a-z_= ' | tr ',' '\n') <(grep '^fold_scores' "$g" | tr -d '[]a-z_= ' | tr ',' '\n')
done | tee "$W/pairs" | grep -v '^[0-9.]*\s[0-9.]*$'
m=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ {d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.4f", m}' "$W/pairs")
echo "largest per-fold accuracy difference cpu vs gpu with shift_flip: $m"
awk -v m="$m" 'BEGIN {exit !(m < 0.02)}' || { echo "DISAGREE"; status=1; }
exit $status
