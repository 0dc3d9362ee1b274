#!/usr/bin/env bash
# The GPU check, prepared to run once on a machine with a CUDA GPU; every figure lands as JSON.
#
#   bash benchmarks/gpu.sh OUT [EXAMPLES]
#
# OUT: the folder for the results (created). EXAMPLES: a GMD Parquet file (`musicvae convert
# groove/ -o gmd.parquet`) for the real-data runs; without it they are skipped. It runs from the
# source tree (PYTHONPATH=src) on the machine's own Python with torch; where symusic, crc32c and
# the other light dependencies are missing, wheels in .whl/ are installed to /tmp/site first.
# Each part is bounded so that the whole check ends in about 5 minutes on one H100:
#
#   env.json        the GPU, torch, CUDA, cuDNN
#   cudnn.json      CUDA keeps cuDNN: the fused CPU kernel declines CUDA tensors, and a
#                   groovae_4bar training step on the GPU runs cuDNN's RNN kernels
#   train_groovae_4bar.json      benchmarks/train.py, batch 512, bf16 autocast, the GEMM floor
#   train_hierdec-mel_16bar.json the paper's 16-bar hierarchical model at Magenta's own size
#                                (2x2048 encoder), batch 512, bf16
#   sample.json     sampling 5 and 64 grooves and 16-bar melodies on the GPU (median ms)
#   train.log, ddp.log   a real `musicvae train` on EXAMPLES, then the same through torchrun
#                        (DistributedDataParallel, one process per GPU)
#
# Settings for a dry run elsewhere: DEVICE (cuda), BATCH (512), STEPS (20), TRAIN_STEPS (60),
# REPEATS (12 timed samplings),
# MELODY_CONFIG (hierdec-mel_16bar; on a CPU, mel_16bar_hierdec: Magenta's size takes minutes a
# step there).
set -euo pipefail

OUT=${1:?usage: bash benchmarks/gpu.sh OUT [EXAMPLES]}
EXAMPLES=${2:-}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-512}
STEPS=${STEPS:-20}
TRAIN_STEPS=${TRAIN_STEPS:-60}
REPEATS=${REPEATS:-12}
MELODY_CONFIG=${MELODY_CONFIG:-hierdec-mel_16bar}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
cd "$ROOT"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

step() { echo "== $*" >&2; }

step "environment"
"$PY" - "$OUT/env.json" "$DEVICE" <<'EOF'
import json, platform, sys
import torch
out, device = sys.argv[1], sys.argv[2]
cuda = device.startswith("cuda")
if cuda and not torch.cuda.is_available():
    sys.exit("error: no CUDA device here (torch.cuda.is_available() is False)")
info = {
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if cuda else None,
    "device": torch.cuda.get_device_name() if cuda else platform.processor(),
    "python": platform.python_version(),
}
json.dump(info, open(out, "w"), indent=2)
print(json.dumps(info))
EOF

step "CUDA keeps cuDNN"
"$PY" - "$OUT/cudnn.json" "$DEVICE" <<'EOF'
import json, sys
import torch
from torch.profiler import ProfilerActivity, profile
from musicvae.configs import get_config
from musicvae.models import build_model, fused_lstm
from musicvae.training.optim import make_optimizer, train_step
sys.path.insert(0, "benchmarks")
from train import make_batch

out, device = sys.argv[1], torch.device(sys.argv[2])
config = get_config("groovae_4bar", "batch_size=64")
model = build_model(config).to(device).train()
batch = make_batch(config, 64, None, device)
x = torch.zeros(2, 3, 4, device=device)
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
with profile(activities=activities) as prof:
    train_step(model, make_optimizer(model, config), batch, 0, config, amp=True)
names = {e.key for e in prof.key_averages()}
result = {
    "kernel_takes_this_device": fused_lstm.supports(x),
    "kernel_ops_called": sorted(n for n in names if n.startswith("musicvae_lstm::")),
    "cudnn_rnn_ops_called": sorted(n for n in names if "cudnn_rnn" in n or "rnn_tanh" in n),
}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result))
if device.type == "cuda" and (result["kernel_takes_this_device"] or result["kernel_ops_called"]):
    sys.exit("error: the fused CPU kernel ran on CUDA tensors")
if device.type == "cuda" and not result["cudnn_rnn_ops_called"]:
    sys.exit("error: the LSTMs did not run on cuDNN")
EOF

step "training step, groovae_4bar, batch $BATCH"
"$PY" benchmarks/train.py --device "$DEVICE" --config groovae_4bar --batch-size "$BATCH" \
  --steps "$STEPS" ${EXAMPLES:+--examples "$EXAMPLES"} >"$OUT/train_groovae_4bar.json"

step "training step, $MELODY_CONFIG, batch $BATCH"
"$PY" benchmarks/train.py --device "$DEVICE" --config "$MELODY_CONFIG" --batch-size "$BATCH" \
  --steps "$((STEPS / 2 > 1 ? STEPS / 2 : 2))" >"$OUT/train_$MELODY_CONFIG.json"

step "sampling"
"$PY" - "$OUT/sample.json" "$DEVICE" "$REPEATS" <<'EOF'
import json, statistics, sys, time
import torch
import musicvae

out, device, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
result = {}
for name in ("groovae_4bar", "mel_16bar"):
    model = musicvae.load(name, device=device)
    for n in (5, 64):
        times = []
        for i in range(repeats + 2):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.sample(n, temperature=0.5, seed=i)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        result[f"{name}_sample_{n}_ms"] = round(1000 * statistics.median(times[2:]), 1)
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result))
EOF

if [ -n "$EXAMPLES" ]; then
  step "musicvae train on $EXAMPLES, then through torchrun"
  common=(--config groovae_4bar --examples "$EXAMPLES" --num-steps "$TRAIN_STEPS"
    --device "$DEVICE" --hparams "batch_size=$BATCH" --eval-every 0 --no-progress)
  "$PY" -m musicvae.cli.main train --run-dir /tmp/gpu-run "${common[@]}" >"$OUT/train.log" 2>&1
  nproc=$("$PY" -c "import torch; print(max(1, torch.cuda.device_count()))")
  "$PY" -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m musicvae.cli.main \
    train --run-dir /tmp/gpu-run-ddp "${common[@]}" >"$OUT/ddp.log" 2>&1
  tail -n 3 "$OUT/train.log" "$OUT/ddp.log"
fi
step "done: $OUT"
