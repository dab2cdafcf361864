#!/usr/bin/env bash
# Fine-tune the reader, detector and refiner side by side on one GPU, within a deadline.
#
#   OUT=/tmp/cand BUDGET=530 scripts/finetune-gpu.sh
#
# Rendering the data sets is what takes the time on a GPU machine, so each model's
# sets are rendered first (in parallel, by --workers processes each) and its training
# gets the minutes left before the common deadline (BUDGET seconds from the start).
# The models are exported into OUT, the torch checkpoints stay in .cache/anpr;
# calibrate and compare the candidates on a CPU (detectors/README.md, Retraining).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-/tmp/cand}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p "$OUT"
END=$(($(date +%s) + ${BUDGET:-530}))
T="$PYTHON -m detectors.training"
left() { $PYTHON -c "import time; print(round(max(0.5, ($END - time.time() - $1) / 60), 2))"; }

reader() {
  $PYTHON -c "from detectors.training.data import reader_set as r
for s in (21, 22, 23, 24): r(40000, seed=s, workers=10)
r(4000, seed=2, workers=10); r(3000, seed=3, style='test', workers=10)" &&
    $T.train_reader --resume --device cuda --threads 2 --workers 10 --batch 256 --seeds 21 22 23 24 \
      --lr 5e-4 --minutes "$(left 45)" --out "$OUT"
}
detector() {
  $PYTHON -c "from detectors.training.data import detector_set as d
for s in (21, 22, 23, 24): d(4000, seed=s, workers=4)" &&
    $T.train_detector --resume --device cuda --threads 2 --workers 8 --batch 64 --seeds 21 22 23 24 \
      --lr 5e-4 --minutes "$(left 40)" --out "$OUT"
}
refiner() {
  $PYTHON -c "from detectors.training.data import refiner_set as f
for s in (45, 46): f(16000, seed=s, workers=2)
f(1000, seed=34, workers=2)" &&
    $T.train_refiner --resume --device cuda --threads 2 --workers 2 --batch 128 --seeds 45 46 \
      --samples 16000 --lr 5e-4 --minutes "$(left 30)" --out "$OUT"
}

reader >"$OUT/reader.log" 2>&1 &
detector >"$OUT/detector.log" 2>&1 &
refiner >"$OUT/refiner.log" 2>&1 &
wait
grep -h "start:\|epoch\|fine-tuning\|Error" "$OUT"/*.log | tail -n 30
