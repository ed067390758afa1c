#!/usr/bin/env bash
# Combine data directories into one; fails if an utterance id is in two of them.
# Label files (utt2*) and prompt files are kept when every source has them.
#
# Usage: utils/combine_data.sh <dest-dir> <src-dir1> [<src-dir2> ...]
# e.g.: utils/combine_data.sh data/train_all data/train_a data/train_b
#
# Thin wrapper around ttsrl/bin/combine_data.py (python3 from PATH, i.e. the venv once path.sh is sourced;
# set PYTHON to use another interpreter). Exits non-zero on bad input.
set -euo pipefail

exec "${PYTHON:-python3}" -m ttsrl.bin.combine_data "$@"
