#!/usr/bin/env bash
# Convert spk2utt ("<spk> <utt1> <utt2> ...") to utt2spk ("<utt> <spk>" lines), in spk2utt
# order (as Kaldi's spk2utt_to_utt2spk.pl); sort with LC_ALL=C sort if needed. Reads files or stdin.
#
# Usage: utils/spk2utt_to_utt2spk.sh [<spk2utt>] > utt2spk
# e.g.:  utils/spk2utt_to_utt2spk.sh data/train/spk2utt | LC_ALL=C sort > data/train/utt2spk
# Exits 1 on a line without utterances.
set -euo pipefail

awk '
NF < 2 {
  printf("spk2utt_to_utt2spk.sh: %s:%d: expected \"<spk> <utt1> [<utt2> ...]\", got \"%s\"\n",
         (FILENAME == "" || FILENAME == "-" ? "stdin" : FILENAME), FNR, $0) > "/dev/stderr"
  bad = 1; exit 1
}
{ for (i = 2; i <= NF; i++) print $i, $1 }
END { if (bad) exit 1 }' "$@"
