#!/usr/bin/env bash
# LJSpeech-1.1: one female speaker, 24 h of read English (22.05 kHz, used at 16 kHz).
# Stage 1 downloads the corpus into downloads/ when it is absent (--local_data_opts "--db_dir DIR"
# points at an existing copy). Runs every stage of rl.sh; options go through to it.
# Usage: ./run.sh [--stage N] [--stop_stage N] [rl.sh options]
set -euo pipefail

fs=16000

./rl.sh \
  --fs "${fs}" \
  --local_data_opts "--fs ${fs}" \
  --train_set train \
  --valid_set dev \
  --test_sets test \
  "$@"
