#!/usr/bin/env bash
# Builds the mini_en corpus offline with espeak-ng: 16 speakers (8 m / 8 f, four age
# groups), four emotion styles (neutral, happy, sad, angry) made from prosody, a degraded
# subset (noise, clipping, band limiting) and the sets train, dev, test and test_hard.
# Deterministic from --seed; wavs that already exist are not synthesized again.
# See local/synthesize.py (pipeline, files written, prompts), local/sentences.py (text)
# and local/speakers.py (speakers, age rule, emotion styles, quality scores).
#
# Usage: local/data.sh [options]            (from egs/mini_en/rl1)
#   e.g. local/data.sh --nj 2
#        local/data.sh --num_train 24 --num_dev 8 --num_test 8 --num_test_hard 8 --data_dir /tmp/d --db_dir /tmp/w
#
# Options:
#   --data_dir DIR         where data/<set> go (default data)
#   --db_dir DIR           where the wavs go (default db)
#   --fs HZ                sample rate of the wavs (default 16000; rl.sh gives its --fs)
#   --seed N               seed of the text, speakers, styles and noise (default 1)
#   --num_train N          train utterances (default 12800; 3/4 of them distinct sentences)
#   --num_dev N            dev utterances (default 160)
#   --num_test N           test utterances (default 120)
#   --num_test_hard N      test_hard utterances (default 80)
#   --degrade_prob P       degraded share of train and dev (default 0.22)
#   --test_degrade_prob P  degraded share of test and test_hard (default 0.05)
#   --nj N                 parallel synthesis processes (default: the number of CPUs, at most 8)
#
# From run.sh: ./run.sh --stage 1 --stop_stage 1 --local_data_opts "--nj 2 --seed 3"
# The default corpus (13,160 utterances, 9.4 h, 1.1 GB of wavs) builds in about 90 s on 2 cores.
set -euo pipefail

data_dir=data
db_dir=db
fs=16000
seed=1
num_train=12800
num_dev=160
num_test=120
num_test_hard=80
degrade_prob=0.22
test_degrade_prob=0.05
nj=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
[ "${nj}" -le 8 ] || nj=8

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# path.sh activates the ttsrl venv; keep the caller's environment when it is not there
if [ -f "${recipe_dir}/path.sh" ]; then
  # shellcheck disable=SC1091
  . "${recipe_dir}/path.sh"
fi
# shellcheck disable=SC1091
. "${recipe_dir}/utils/parse_options.sh" || exit 1

if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

if ! command -v espeak-ng >/dev/null 2>&1; then
  echo "$0: espeak-ng is not installed; it synthesizes the mini_en corpus." >&2
  echo "$0: install it with: cd ${MAIN_ROOT:-../../..}/tools && make   (or: apt-get install espeak-ng)" >&2
  exit 1
fi

log "synthesizing mini_en into ${db_dir}, data dirs in ${data_dir} (seed ${seed}, ${nj} jobs)"
# one thread per process: the parallelism is over utterances
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  python3 "${recipe_dir}/local/synthesize.py" \
  --data_dir "${data_dir}" \
  --db_dir "${db_dir}" \
  --fs "${fs}" \
  --seed "${seed}" \
  --num_train "${num_train}" \
  --num_dev "${num_dev}" \
  --num_test "${num_test}" \
  --num_test_hard "${num_test_hard}" \
  --degrade_prob "${degrade_prob}" \
  --test_degrade_prob "${test_degrade_prob}" \
  --nj "${nj}"
log "done: ${data_dir}/{train,dev,test,test_hard}"
