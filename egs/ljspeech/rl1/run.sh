#!/usr/bin/env bash
# LJSpeech-1.1: one female speaker, 24 h of read English (22.05 kHz, used at 16 kHz).
# Stage 1 downloads the corpus into downloads/ when it is absent (--db_dir DIR points at an existing
# copy, or where to download it). Runs every stage of rl.sh; options go through to it.
# Usage: ./run.sh [--stage N] [--stop_stage N] [--db_dir DIR] [rl.sh options]
#   e.g. ./run.sh --db_dir /data/corpora --stage 1 --stop_stage 1   (/data/corpora/LJSpeech-1.1/metadata.csv)
set -euo pipefail

fs=16000

./rl.sh \
  --fs "${fs}" \
  --train_set train \
  --valid_set dev \
  --test_sets test \
  "$@"
