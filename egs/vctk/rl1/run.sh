#!/usr/bin/env bash
# VCTK 0.92: 110 English speakers of many accents (48 kHz flac, used at 16 kHz, mic1).
# dev and test are held-out speakers (see local/data.sh), so test scores zero-shot cloning of
# unseen voices. Stage 1 downloads the corpus (11 GB) into downloads/ when it is absent (--db_dir
# DIR: an existing copy, DIR/VCTK-Corpus-0.92, or where to download it).
# Usage: ./run.sh [--stage N] [--stop_stage N] [--db_dir DIR] [rl.sh options]
set -euo pipefail

fs=16000

./rl.sh \
  --fs "${fs}" \
  --train_set train \
  --valid_set dev \
  --test_sets test \
  "$@"
