#!/usr/bin/env bash
# Split a data directory into <data-dir>/split<n>/{1..n} for parallel jobs (JOB=1:n).
# Splits per utterance by default; --per-spk keeps every speaker within one part.
#
# Usage: utils/split_data.sh [--per-spk] <data-dir> <num-to-split>
# e.g.: utils/split_data.sh data/train 4   # prints data/train/split4/1 ... data/train/split4/4
#
# Thin wrapper around ttsrl/bin/split_data.py (python3 from PATH, i.e. the venv once path.sh is sourced;
# set PYTHON to use another interpreter). Exits non-zero on bad input.
set -euo pipefail

exec "${PYTHON:-python3}" -m ttsrl.bin.split_data "$@"
