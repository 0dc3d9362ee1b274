#!/usr/bin/env bash
# Train the two bundled melody models and the 16-bar models they are compared with, from
# music21's public-domain folk collections; then export each best-by-validation checkpoint as a
# float16 bundle, score it on the test split and write the flat-versus-hierarchical table.
# First four runs side by side: the 2-bar bundle and, from scratch with the same seed, the flat
# 16-bar model and the hierarchical one with Magenta's zero conductor input and with z fed to
# it. Then the 16-bar bundle: the hierarchical decoder on the flat model's trained encoder
# (--init-parts encoder), because from scratch its own encoder gave every tune the same code
# (docs/hierarchical-decoder.md#melodies). Everything is written under OUT; a killed script
# resumes when rerun with the same OUT.
#
#   scripts/train_melody_bundles.sh OUT [MAX_TIME]
#
# MAX_TIME (default 140m) bounds each training run; the first four run at once, one thread each.
# Environment: EXAMPLES (default OUT/folk.parquet, built with `musicvae data folk` when missing;
# Essen is never added, so the bundles stay free of its non-commercial licence), STEPS (default
# 20000, so MAX_TIME ends the runs), THREADS (default 1), MUSICVAE (default: musicvae on PATH),
# PYTHON (default python3, for scripts/compare_models.py). The 2-bar model's KL weight reaches
# Magenta's 0.2 within a CPU budget (beta_rate 0.9995 against Magenta's 0.99999 over 200k steps).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUT [MAX_TIME]" >&2
    exit 2
fi
out=$1
max_time=${2:-140m}
mv=${MUSICVAE:-musicvae}
threads=${THREADS:-1}
examples=${EXAMPLES:-$out/folk.parquet}
mkdir -p "$out"
if [ ! -f "$examples" ]; then
    "$mv" data folk -o "$examples"
fi

# name, config, extra hparams: the run each becomes. From scratch, both hierarchical runs'
# encoders collapsed to one code for every tune; they and the flat run are only compared.
bundles=(
    "mel_2bar cat-mel_2bar_small batch_size=128,beta_rate=0.9995"
    "mel_16bar_zeros mel_16bar_hierdec batch_size=64,conductor_input=zeros"
    "mel_16bar_z mel_16bar_hierdec batch_size=64,conductor_input=z"
    "mel_16bar_flat mel_16bar_flat batch_size=64"
)

pids=()
for entry in "${bundles[@]}"; do
    read -r name config hparams <<<"$entry"
    "$mv" train --config "$config" --run-dir "$out/$name" --examples "$examples" \
        --hparams "$hparams" --seed 1 --threads "$threads" --num-steps "${STEPS:-20000}" \
        --eval-every 500 --checkpoint-every 100 --checkpoints-to-keep 0 \
        --max-time "$max_time" --no-progress >>"$out/$name.train.log" 2>&1 &
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

# The 16-bar bundle: the conductor over the flat run's encoder, its decoder from the seed.
"$mv" train --config mel_16bar_hierdec --run-dir "$out/mel_16bar" --examples "$examples" \
    --hparams batch_size=64,conductor_input=z --init-from "$out/mel_16bar_flat" \
    --init-parts encoder --seed 1 --threads "$threads" --num-steps "${STEPS:-20000}" \
    --eval-every 250 --checkpoint-every 100 --checkpoints-to-keep 0 \
    --max-time "$max_time" --no-progress >>"$out/mel_16bar.train.log" 2>&1
bundles+=("mel_16bar mel_16bar_hierdec batch_size=64,conductor_input=z")

for entry in "${bundles[@]}"; do
    read -r name config hparams <<<"$entry"
    which=best
    [ -f "$out/$name/train/model.ckpt-best.pt" ] || which=latest
    "$mv" export "$out/$name" --which "$which" -o "$out/$name.safetensors" --dtype float16 \
        --meta data="music21 folk corpus: O'Neill's, Ryan's, Aird's and miscFolk, train split" \
        --meta licence="public domain tunes (no Essen); transcribers credited in the dataset rows"
    "$mv" evaluate --checkpoint "$out/$name.safetensors" --examples "$examples" --split test \
        --output "$out/$name.test.json" >"$out/$name.test.txt"
done
"${PYTHON:-python3}" "$(dirname "$0")/compare_models.py" --examples "$examples" --split test \
    --model "$out/mel_16bar_flat.safetensors" --model "$out/mel_16bar_zeros.safetensors" \
    --model "$out/mel_16bar_z.safetensors" --model "$out/mel_16bar.safetensors" \
    --json "$out/melody-comparison.json" --plot "$out/melody_structure.png" \
    >"$out/melody-comparison.md"
echo "bundles, event files and reports in $out"
