#!/usr/bin/env bash
# Make a data directory consistent in place: keep only utterances present in every file,
# sort every file, regenerate spk2utt. Originals are saved in <data-dir>/.backup/ and the
# dropped ids, with reasons, in <data-dir>/.backup/dropped.txt; a second run on the same dir
# uses .backup.2/ (then .backup.3/ ...), so the first originals are never overwritten.
#
# Usage: utils/fix_data_dir.sh [--required "<files>"] <data-dir>
# e.g.: utils/fix_data_dir.sh data/train
#
# Thin wrapper around ttsrl/bin/fix_data_dir.py (python3 from PATH, i.e. the venv once path.sh is sourced;
# set PYTHON to use another interpreter). Exits non-zero on bad input.
set -euo pipefail

exec "${PYTHON:-python3}" -m ttsrl.bin.fix_data_dir "$@"
