#!/usr/bin/env bash
# Convert utt2spk ("<utt> <spk>" lines) to spk2utt ("<spk> <utt1> <utt2> ..."), speakers in
# order of first appearance (as Kaldi's utt2spk_to_spk2utt.pl). Reads files or stdin.
#
# Usage: utils/utt2spk_to_spk2utt.sh [<utt2spk>] > spk2utt
# e.g.:  utils/utt2spk_to_spk2utt.sh data/train/utt2spk > data/train/spk2utt
# Exits 1 on a line that does not have exactly two fields.
set -euo pipefail

awk '
NF != 2 {
  printf("utt2spk_to_spk2utt.sh: %s:%d: expected \"<utt> <spk>\", got \"%s\"\n",
         (FILENAME == "" || FILENAME == "-" ? "stdin" : FILENAME), FNR, $0) > "/dev/stderr"
  bad = 1; exit 1
}
!($2 in utts) { order[++n] = $2; utts[$2] = $1; next }
{ utts[$2] = utts[$2] " " $1 }
END {
  if (bad) exit 1
  for (i = 1; i <= n; i++) print order[i], utts[order[i]]
}' "$@"
