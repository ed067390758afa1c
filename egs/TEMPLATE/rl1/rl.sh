#!/usr/bin/env bash
# The ttsrl recipe: data -> tokenizer -> base TTS -> sampling -> rewards -> alignment -> decoding
# -> scoring. Every corpus' run.sh sets options and calls this script (symlinked as ./rl.sh).
#
# Usage: ./run.sh [options]            (from egs/<corpus>/rl1)
#   e.g. ./run.sh --stage 1 --stop_stage 1
#        ./run.sh --stage 5 --stop-stage 8 --align_method dpo
#
# Stages (see shared/DESIGN.md):
#   1 data preparation (local/data.sh) and validation           -> data/<set>
#   2 features and speech tokenizer training                     -> dump/feats, exp/tokenizer
#   3 tokenization of every set                                   -> dump/tokens/<set>
#   4 base TTS training: codec LM, flow matching, vocoder         -> exp/base/{lm,flow,vocoder}
#   5 sampling N candidates per (prompt, text)                    -> exp/<model>/samples/<set>
#   6 reward model, candidate scoring, preference pairs           -> exp/reward, pairs.jsonl
#   7 preference alignment (--align_method)                       -> exp/align_<method>
#   8 decoding the test sets                                      -> exp/<model>/decode/<set>
#   9 scoring and report                                          -> exp/RESULTS.md, exp/results.json
#
# Options:
#   --stage N / --stop_stage N   first and last stage to run (default 1 and 9)
#   --nj N                       parallel jobs for data processing (default 4)
#   --ngpu N                     GPUs for training; 0 = CPU (default 0)
#   --fs HZ                      sample rate of every data dir (default 16000)
#   --train_set / --valid_set    data sets for training and validation (default train / dev)
#   --test_sets "A B"            sets to decode and score (default "test")
#   --local_data_opts "..."      options passed to local/data.sh
#   --align_method M             alignment method of stage 7 (default dpo)
# A stage whose .done marker exists is skipped; delete the marker (or the folder) to redo it.
set -euo pipefail

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

stage=1
stop_stage=9
nj=4
ngpu=0
fs=16000
train_set=train
valid_set=dev
test_sets="test"
local_data_opts=""
align_method=dpo
datadir=data
dumpdir=dump
expdir=exp

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh || exit 1

if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

all_sets="${train_set} ${valid_set} ${test_sets}"

# not_yet N NAME: stages whose implementation has not landed say so instead of pretending
not_yet() {
  log "Stage $1: $2 is not implemented in this version of ttsrl; skipping"
}

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  if [ -f "${datadir}/.stage1.done" ]; then
    log "Stage 1: data preparation: ${datadir}/.stage1.done exists; skipping"
  else
    log "Stage 1: data preparation: local/data.sh ${local_data_opts}"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
    for dset in ${all_sets}; do
      log "Stage 1: validating ${datadir}/${dset}"
      utils/validate_data_dir.sh --sample_rate "${fs}" "${datadir}/${dset}"
    done
    touch "${datadir}/.stage1.done"
  fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  not_yet 2 "feature extraction and speech tokenizer training"
fi
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  not_yet 3 "tokenization"
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  not_yet 4 "base TTS training"
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  not_yet 5 "sampling"
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  not_yet 6 "reward models and preference pairs"
fi
if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
  not_yet 7 "preference alignment (${align_method})"
fi
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
  not_yet 8 "decoding"
fi
if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
  not_yet 9 "scoring"
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
