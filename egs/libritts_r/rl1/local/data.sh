#!/usr/bin/env bash
# Prepares LibriTTS-R as data/{train,dev,test} at --fs Hz, downloading the absent subsets first.
# Usage: local/data.sh [--db_dir downloads] [--data_dir data] [--download auto|true|false] [--fs 16000]
#                      [--train_subsets "train-clean-100"] [--dev_subset dev-clean] [--test_subset test-clean]
#                      [--base_url URL]
#   --db_dir         folder holding (or receiving) LibriTTS_R/<subset>/ and LibriTTS_R/speakers.tsv
#   --download       auto: download only the subsets missing from <db_dir>/LibriTTS_R
#   --train_subsets  comma- or space-separated, e.g. train-clean-100,train-clean-360 for 460 h
#                    instead of 100 h (commas survive rl.sh's --local_data_opts)
#   --base_url       where the archives are (openslr by default; a mirror or file:// path also works)
# The 24 kHz wavs are resampled by sox pipes in wav.scp. Test sets get prompt.scp/prompt_text.
set -euo pipefail

db_dir=downloads
data_dir=data
download=auto
fs=16000
train_subsets=train-clean-100
dev_subset=dev-clean
test_subset=test-clean
base_url=https://www.openslr.org/resources/141

. ./path.sh
. utils/parse_options.sh || exit 1
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

train_subsets=${train_subsets//,/ }
subsets="${train_subsets} ${dev_subset} ${test_subset}"
case "${download}" in
  auto)
    download=false
    for subset in ${subsets}; do
      [ -d "${db_dir}/LibriTTS_R/${subset}" ] || download=true
    done
    ;;
  true | false) ;;
  *) echo "$0: --download takes auto, true or false, not '${download}'" >&2; exit 1 ;;
esac
if [ "${download}" = true ]; then
  # shellcheck disable=SC2086
  python3 local/download.py --db_dir "${db_dir}" --base_url "${base_url}" --subsets ${subsets}
fi
# shellcheck disable=SC2086
python3 local/prepare_data.py --db_dir "${db_dir}" --data_dir "${data_dir}" --fs "${fs}" \
  --train_subsets ${train_subsets} --dev_subset "${dev_subset}" --test_subset "${test_subset}"
echo "$0: prepared ${data_dir}/{train,dev,test} from ${db_dir}/LibriTTS_R"
