#!/usr/bin/env bash
# Write a subset of a data directory (labels, segments and wav.scp kept consistent).
#
# Usage: utils/subset_data_dir.sh (--first N | --last N | --shortest N | --utt-list <file> | --spk-list <file>) <src-dir> <dest-dir>
# e.g.: utils/subset_data_dir.sh --first 100 data/train data/train_100
#
# Thin wrapper around ttsrl/bin/subset_data_dir.py (python3 from PATH, i.e. the venv once path.sh is sourced;
# set PYTHON to use another interpreter). Exits non-zero on bad input.
set -euo pipefail

exec "${PYTHON:-python3}" -m ttsrl.bin.subset_data_dir "$@"
