#!/usr/bin/env bash
# Creates a new recipe folder that shares rl.sh, path.sh, utils/ and the default configs by symlink,
# and writes the two files a corpus needs, as commented stubs (an existing file is kept):
#   run.sh         the options of rl.sh for this corpus (runs as written)
#   local/data.sh  corpus -> Kaldi data dirs data/{train,dev,test}: fill in the part marked TODO
# Usage: egs/TEMPLATE/rl1/setup.sh egs/<corpus>/rl1
#   then fill in egs/<corpus>/rl1/local/data.sh, and run ./run.sh --stage 1 --stop_stage 1 to check it.
set -euo pipefail
if [ $# -eq 1 ] && { [ "$1" = --help ] || [ "$1" = -h ]; }; then
  sed -n '2,7s/^# \{0,1\}//p' "$0"
  exit 0
fi
if [ $# -ne 1 ]; then
  echo "Usage: $0 egs/<corpus>/rl1" >&2
  exit 1
fi
dir=$1
template=$(cd "$(dirname "$0")" && pwd)
mkdir -p "${dir}/local" "${dir}/conf"
dir=$(cd "${dir}" && pwd)
corpus=$(basename "$(dirname "${dir}")")
rel() { python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$1" "$2"; }
for f in rl.sh path.sh; do
  ln -sfn "$(rel "${template}/${f}" "${dir}")" "${dir}/${f}"
done
ln -sfn "$(rel "${template}/../../../utils" "${dir}")" "${dir}/utils"
[ -f "${dir}/cmd.sh" ] || cp "${template}/cmd.sh" "${dir}/cmd.sh"
for f in "${template}"/conf/*; do
  [ -e "${f}" ] || continue
  [ -e "${dir}/conf/$(basename "${f}")" ] || ln -s "$(rel "${f}" "${dir}/conf")" "${dir}/conf/$(basename "${f}")"
done

written=()
if [ ! -e "${dir}/run.sh" ]; then
  cat > "${dir}/run.sh" <<RUN
#!/usr/bin/env bash
# ${corpus}: TODO one line on the corpus (language, speakers, hours, native sample rate).
# Runs every stage of rl.sh (./rl.sh --help lists them and their options); options given here go
# through to it and override these. Written by egs/TEMPLATE/rl1/setup.sh.
# Usage: ./run.sh [--stage N] [--stop_stage N] [--db_dir DIR] [rl.sh options]
#   e.g. ./run.sh --stage 1 --stop_stage 1 --db_dir /data/${corpus}     (prepare and validate the data dirs)
#        ./run.sh --base_exp /models/base --stop_stage 3                  (a base trained elsewhere: data, tokens)
#        ./run.sh --base_exp /models/base --stage 5 --stop_stage 8        (then sample, align, decode)
set -euo pipefail

./rl.sh \\
  --fs 16000 \\
  --train_set train \\
  --valid_set dev \\
  --test_sets test \\
  "\$@"
RUN
  chmod +x "${dir}/run.sh"
  written+=(run.sh)
fi
if [ ! -e "${dir}/local/data.sh" ]; then
  cat > "${dir}/local/data.sh" <<'DATA'
#!/usr/bin/env bash
# Prepares the corpus as Kaldi data dirs <data_dir>/{train,dev,test} (stage 1 of rl.sh).
# A stub written by egs/TEMPLATE/rl1/setup.sh: fill in the part marked TODO and delete the two lines
# that stop it. rl.sh calls it as
#   local/data.sh --data_dir <datadir> --fs <fs> [--db_dir <db_dir>] <local_data_opts>
# and then checks every set with utils/validate_data_dir.sh --sample_rate <fs>.
#
# Every <data_dir>/<set> holds, one line per utterance, sorted (README.md, "Data directories"):
#   wav.scp   <utt> <wav path>, or <utt> <command> | (e.g. "sox in.flac -t wav -r 16000 -c 1 - |")
#             audio at --fs Hz, mono
#   text      <utt> <transcript>, as written: numbers and abbreviations are spelled out by ttsrl
#   utt2spk   <utt> <speaker>; utterance ids start with their speaker id (Kaldi's rule: "spk1-utt7")
#   spk2utt   made from utt2spk by utils/fix_data_dir.sh below
# test sets (zero-shot synthesis, stages 8-9) also hold each utterance's prompt: another utterance
#   prompt.scp   <utt> <wav of the prompt>       prompt_text  <utt> <its transcript>
#   (ttsrl.bin.make_prompted_subset writes both, choosing a 3-10 s utterance of the same speaker)
# optional labels, each read when present:
#   utt2emo <utt> <emotion>, utt2gender <utt> m|f, utt2age <utt> <years>, utt2quality <utt> <score>
#   -> the reward model's heads (stage 6), the emotion judge and DiffRO's target emotion (stages 7, 9)
#
# Usage: local/data.sh [--data_dir data] [--fs 16000] [--db_dir downloads]
set -euo pipefail

data_dir=data     # where <set>/ go (rl.sh gives its --datadir)
fs=16000          # the sample rate of every wav.scp entry (rl.sh gives its --fs)
db_dir=downloads  # the corpus as distributed (rl.sh gives its --db_dir when set)

. ./path.sh
. utils/parse_options.sh || exit 1
if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

echo "$0: a stub of egs/TEMPLATE/rl1/setup.sh: fill in how ${db_dir} becomes ${data_dir}/{train,dev,test}" \
  "at ${fs} Hz" >&2
exit 1

# TODO: write wav.scp, text and utt2spk of ${data_dir}/train, dev and ${data_dir}/local/test from ${db_dir},
# e.g. with a script of your own:
#   python3 local/prepare_data.py --db_dir "${db_dir}" --data_dir "${data_dir}" --fs "${fs}"
for dset in train dev; do
  utils/fix_data_dir.sh "${data_dir}/${dset}"  # sorts, drops utterances missing from a file, writes spk2utt
done
utils/fix_data_dir.sh "${data_dir}/local/test"
# the test set: every utterance with a prompt of its speaker (a number above the set's size takes them all)
python3 -m ttsrl.bin.make_prompted_subset --num_utts 1000000 "${data_dir}/local/test" "${data_dir}/test"
DATA
  chmod +x "${dir}/local/data.sh"
  written+=(local/data.sh)
fi
echo "created ${dir}${written[*]:+ with stubs of ${written[*]}}: fill in local/data.sh (its TODO), then" \
  "./run.sh --stage 1 --stop_stage 1"
