#!/usr/bin/env bash
# Check a Kaldi data directory: files sorted, ids consistent across files, labels valid,
# audio present, non-empty and at the expected sample rate. Prints every problem found.
#
# Usage: utils/validate_data_dir.sh [options] <data-dir>
#   --sample-rate <hz>      expected sample rate (default 16000; 0: do not check)
#   --no-audio              skip the audio checks
#   --required "<files>"    files that must exist (default "wav.scp text utt2spk")
#   --kaldi-strict <bool>   also fail where Kaldi's validate_data_dir.sh fails (default true)
# e.g.: utils/validate_data_dir.sh --sample-rate 24000 data/train
#
# Thin wrapper around ttsrl/bin/validate_data_dir.py (python3 from PATH, i.e. the venv once path.sh is sourced;
# set PYTHON to use another interpreter). Exits non-zero on bad input.
set -euo pipefail

exec "${PYTHON:-python3}" -m ttsrl.bin.validate_data_dir "$@"
