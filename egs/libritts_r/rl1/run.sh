#!/usr/bin/env bash
# LibriTTS-R: restored LibriTTS, multi-speaker read English (24 kHz, used at 16 kHz).
# train = train-clean-100 (add train-clean-360 with
#   --local_data_opts "--train_subsets train-clean-100,train-clean-360"),
# dev = dev-clean, test = test-clean (unseen readers, zero-shot prompts).
# Stage 1 downloads the absent subsets into downloads/ (--db_dir DIR: an existing copy,
# DIR/LibriTTS_R/<subset>, or where to download it).
# Usage: ./run.sh [--stage N] [--stop_stage N] [--db_dir DIR] [rl.sh options]
set -euo pipefail

fs=16000

./rl.sh \
  --fs "${fs}" \
  --train_set train \
  --valid_set dev \
  --test_sets test \
  "$@"
