#!/usr/bin/env bash
# Prepares LJSpeech-1.1 as data/{train,dev,test} at --fs Hz, downloading it first when absent.
# Usage: local/data.sh [--db_dir downloads] [--data_dir data] [--download auto|true|false] [--fs 16000]
#                      [--n_dev 100] [--n_test 100] [--url URL]
#   --db_dir    folder holding (or receiving) LJSpeech-1.1/{metadata.csv,wavs/}
#   --download  auto: download only when <db_dir>/LJSpeech-1.1/metadata.csv is absent
#   --n_dev / --n_test  sizes of dev and test, taken from the end of metadata.csv (test last)
#   --url       the archive (official by default; a mirror or file:// path also works)
# The 22.05 kHz wavs are resampled by sox pipes in wav.scp. Test sets get prompt.scp/prompt_text.
set -euo pipefail

db_dir=downloads
data_dir=data
download=auto
fs=16000
n_dev=100
n_test=100
url=https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2

. ./path.sh
. utils/parse_options.sh || exit 1
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

case "${download}" in
  auto) if [ -f "${db_dir}/LJSpeech-1.1/metadata.csv" ]; then download=false; else download=true; fi ;;
  true | false) ;;
  *) echo "$0: --download takes auto, true or false, not '${download}'" >&2; exit 1 ;;
esac
if [ "${download}" = true ]; then
  python3 local/download.py --db_dir "${db_dir}" --url "${url}"
fi
python3 local/prepare_data.py --db_dir "${db_dir}" --data_dir "${data_dir}" --fs "${fs}" \
  --n_dev "${n_dev}" --n_test "${n_test}"
echo "$0: prepared ${data_dir}/{train,dev,test} from ${db_dir}/LJSpeech-1.1"
