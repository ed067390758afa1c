#!/usr/bin/env bash
# Prepares VCTK-Corpus-0.92 as data/{train,dev,test} at --fs Hz, downloading it first when absent.
# Usage: local/data.sh [--db_dir downloads] [--data_dir data] [--download auto|true|false] [--fs 16000]
#                      [--mic mic1] [--dev_speakers "p226 p228"] [--test_speakers "p225 p227 ..."] [--url URL]
#   --db_dir         folder holding (or receiving) VCTK-Corpus-0.92/{speaker-info.txt,txt,wav48_silence_trimmed}
#   --download       auto: download only when <db_dir>/VCTK-Corpus-0.92/speaker-info.txt is absent
#   --mic            mic1 or mic2: which recording of each utterance
#   --dev_speakers / --test_speakers   held-out speakers, comma- or space-separated; the rest is train
#                    (default dev p226,p228; test p225,p227,p237,p245,p261,p294,p302,p335)
#   --url            the archive (official by default; a mirror or file:// path also works)
# The 48 kHz flac files are converted by sox pipes in wav.scp. Utterances missing text or audio
# (all of p315, which has no text) are skipped and counted in the log and data/local/skipped_utts.
# Test sets get prompt.scp/prompt_text.
set -euo pipefail

db_dir=downloads
data_dir=data
download=auto
fs=16000
mic=mic1
dev_speakers=p226,p228
test_speakers=p225,p227,p237,p245,p261,p294,p302,p335
url=https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip

. ./path.sh
. utils/parse_options.sh || exit 1
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

case "${download}" in
  auto) if [ -f "${db_dir}/VCTK-Corpus-0.92/speaker-info.txt" ]; then download=false; else download=true; fi ;;
  true | false) ;;
  *) echo "$0: --download takes auto, true or false, not '${download}'" >&2; exit 1 ;;
esac
if [ "${download}" = true ]; then
  python3 local/download.py --db_dir "${db_dir}" --url "${url}"
fi
# shellcheck disable=SC2086
python3 local/prepare_data.py --db_dir "${db_dir}" --data_dir "${data_dir}" --fs "${fs}" --mic "${mic}" \
  --dev_speakers ${dev_speakers//,/ } --test_speakers ${test_speakers//,/ }
echo "$0: prepared ${data_dir}/{train,dev,test} from ${db_dir}/VCTK-Corpus-0.92"
