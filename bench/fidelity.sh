#!/usr/bin/env bash
# Multi-fidelity against full training on real data: the same search (strategy, seed) with --fidelity full,
# halving and hyperband, for several seeds, the multi-fidelity ones with twice the budget of new architectures
# (--mf-budget; about the same number of training epochs in all, spent on more architectures); then bench/fidelity.py prints the
# best top-rung CV accuracy against wall time, and when each multi-fidelity run first reached the full searches'
# final accuracy (their mean less one seed-to-seed standard deviation), as a fraction of that seed's full run.
#
# usage: bench/fidelity.sh DATA.csv.gz [--seeds 3] [--budget 8] [--mf-budget 16] [--epochs 8] [--folds 3]
#        [--strategy evolution]
#        [--shape 1,28,28] [--out DIR]
# e.g.   bench/fidelity.sh ../shared/data/fashion-mnist/fashion10k.csv.gz
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(realpath "$1"); shift
seeds=3 budget=8 mf_budget= epochs=8 folds=3 strategy=evolution shape=1,28,28 out=target/bench-fidelity
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2 ;; --budget) budget=$2 ;; --mf-budget) mf_budget=$2 ;; --epochs) epochs=$2 ;; --folds) folds=$2 ;;
        --strategy) strategy=$2 ;; --shape) shape=$2 ;; --out) out=$2 ;;
        *) echo "bench/fidelity.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
mf_budget=${mf_budget:-$((2 * budget))}
cargo build --release --quiet -p nas-cli
mkdir -p "$out"
# A copy: the benchmark's runs all use the binary it started with, whatever is built meanwhile.
cp target/release/nas "$out/nas"
printf '[data]\nsource = "%s"\n[evaluate]\nfolds = %s\n' "$data" "$folds" > "$out/exp.toml"
for seed in $(seq 1 "$seeds"); do
    for fidelity in full halving hyperband; do
        run="$out/$fidelity-seed$seed"
        if [ -f "$run/selection.toml" ] && [ -f "$run/started" ]; then continue; fi
        rm -rf "$run"
        mkdir -p "$run"
        b=$budget; [ "$fidelity" = full ] || b=$mf_budget
        date +%s.%N > "$run.started"
        "$out/nas" run --quiet --no-retrain --config "$out/exp.toml" --out "$run" --shape "$shape" \
            --fidelity "$fidelity" --strategy "$strategy" --budget "$b" --epochs "$epochs" --seed "$seed"
        date +%s.%N > "$run.ended"
        mv "$run.started" "$run/started"; mv "$run.ended" "$run/ended"
    done
done
python3 bench/fidelity.py "$out" "$seeds"
