#!/usr/bin/env bash
# Train the four bundled models side by side on one machine (one GPU when there is one, bf16
# autocast; the CPU otherwise), then export each best-by-validation checkpoint as a bundle and
# score it on the test split. Everything a run leaves (bundles, event files, best checkpoints,
# logs, evaluation reports) is written under OUT, so a lent GPU machine's $OUT brings it back.
#
#   scripts/train_bundles.sh EXAMPLES OUT [MAX_TIME]
#
# EXAMPLES is `musicvae convert groove/ -o gmd.parquet`'s file; MAX_TIME (default 7m) bounds
# each training run, and the four run at once. Environment: STEPS (default 100000, so MAX_TIME
# ends the runs), BATCH (default 512 on a GPU, 128 on the CPU), EVAL_EVERY (default 500),
# MUSICVAE (default: musicvae on PATH). A killed script resumes: rerun it with the same OUT.
# The bundles' configs and free bits are those of their model cards in the README.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 EXAMPLES OUT [MAX_TIME]" >&2
    exit 2
fi
examples=$1
out=$2
max_time=${3:-7m}
mv=${MUSICVAE:-musicvae}
if [ ! -f "$examples" ]; then
    echo "$examples: no such dataset file (make one with: musicvae convert groove/ -o gmd.parquet)" >&2
    exit 2
fi
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    batch=${BATCH:-512}
else
    batch=${BATCH:-128}
fi
mkdir -p "$out"

# name, config: the bundle each run becomes and the registered config it trains.
bundles=(
    "groovae_4bar groovae_4bar_hitcond"
    "groovae_2bar_humanize groovae_2bar_humanize_hitcond"
    "groovae_2bar_tap_fixed_velocity groovae_2bar_tap_controls"
    "groovae_16bar_hierdec groovae_16bar_hierdec"
)

pids=()
for entry in "${bundles[@]}"; do
    read -r name config <<<"$entry"
    "$mv" train --config "$config" --run-dir "$out/$name" --examples "$examples" \
        --hparams "batch_size=$batch,free_bits=256" --seed 1 --num-steps "${STEPS:-100000}" \
        --eval-every "${EVAL_EVERY:-500}" --max-time "$max_time" --no-progress \
        >>"$out/$name.train.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
if [ "$status" -ne 0 ]; then
    echo "a training run failed; its log is in $out/*.train.log" >&2
    tail -n 3 "$out"/*.train.log >&2
    exit 1
fi

for entry in "${bundles[@]}"; do
    read -r name config <<<"$entry"
    which=best
    [ -f "$out/$name/train/model.ckpt-best.pt" ] || which=latest
    "$mv" export "$out/$name" --which "$which" -o "$out/$name.safetensors" --dtype float16 \
        --spread-from "$examples"
    "$mv" evaluate --checkpoint "$out/$name.safetensors" --examples "$examples" --split test \
        --output "$out/$name.test.json" >"$out/$name.test.txt"
done
"$mv" evaluate --checkpoint "$out/groovae_2bar_tap_fixed_velocity.safetensors" \
    --examples "$examples" --split test --protocol haki2022 \
    --output "$out/groovae_2bar_tap_fixed_velocity.haki2022.json" \
    >"$out/groovae_2bar_tap_fixed_velocity.haki2022.txt"
echo "bundles, event files and reports in $out"
