#!/usr/bin/env bash
# mini_en: an English corpus synthesized offline with espeak-ng (speakers, emotions, degraded
# quality), the default ttsrl recipe. Runs every stage of rl.sh with every alignment method
# (diffro_happy: DiffRO steered toward "happy", the emotion-control run); options go through to
# it and override these.
# Usage: ./run.sh [--stage N] [--stop_stage N] [rl.sh options]
set -euo pipefail

./rl.sh \
  --fs 16000 \
  --train_set train \
  --valid_set dev \
  --test_sets "test test_hard" \
  --align_methods "dpo speechalign raft coh diffro diffro_happy" \
  "$@"
