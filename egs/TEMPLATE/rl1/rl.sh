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
#   --lm_config / --flow_config  stage 4 configs (default ${MAIN_ROOT}/conf/{lm,flow}/small.yaml)
#   --vocoder griffin_lim|vocos  vocoder of stages 4 and 8 (vocos is trained in stage 4)
#   --sample_sets, --num_candidates, --sample_args   stage 5 sampling (default: dev and test sets, 4)
#   --decode_models "resynth base"  stage 8: models that synthesize the test sets (resynth: golden tokens)
#   --decode_args "..."          options of ttsrl.bin.synthesize (sampling, --flow_n_steps, ...)
#   --tokenizer_config FILE      speech tokenizer config of stage 2 (default ${MAIN_ROOT}/conf/tokenizer/small.yaml)
#   --tokenizer_args "..."       more options for ttsrl.bin.train_tokenizer (e.g. "--max_steps 500")
#   --judge_config FILE          CTC judge ASR config of stage 9 (default ${MAIN_ROOT}/conf/asr/small.yaml)
#   --judge_args "..."           more options for ttsrl.bin.train_asr (e.g. "--max_steps 500")
#   --score_metrics "A,B"        stage 9 metrics of decoded models (default wer,cer,sim,f0v,nll; add dnsmos)
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
tokenizer_config=""     # stage 2: speech tokenizer config (empty: ${MAIN_ROOT}/conf/tokenizer/small.yaml)
tokenizer_args=""       # stage 2: extra options of ttsrl.bin.train_tokenizer
judge_config=""         # stage 9: CTC judge ASR config (empty: ${MAIN_ROOT}/conf/asr/small.yaml)
judge_args=""           # stage 9: extra options of ttsrl.bin.train_asr
lm_config=""            # stage 4: codec LM config (empty: ${MAIN_ROOT}/conf/lm/small.yaml)
flow_config=""          # stage 4: flow-matching config (empty: ${MAIN_ROOT}/conf/flow/small.yaml)
vocoder=griffin_lim     # stage 4/8: griffin_lim (no training) or vocos (trained in stage 4)
vocoder_config=""       # stage 4: vocos config (empty: ${MAIN_ROOT}/conf/vocoder/small.yaml)
sample_sets=""          # stage 5: sets to sample candidates for (empty: valid_set and test_sets)
num_candidates=4        # stage 5: candidates per (prompt, text)
sample_args="--top_k 50" # stage 5: sampling options of ttsrl.bin.sample_lm
decode_models="resynth base" # stage 8: models to synthesize the test sets with (resynth = golden tokens)
decode_args="--top_k 50 --flow_n_steps 10" # stage 8: options of ttsrl.bin.synthesize
score_metrics="wer,cer,sim,f0v,nll"  # stage 9: metrics of decoded models (dnsmos optional)
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
tokenizer_config=${tokenizer_config:-${MAIN_ROOT}/conf/tokenizer/small.yaml}
judge_config=${judge_config:-${MAIN_ROOT}/conf/asr/small.yaml}
lm_config=${lm_config:-${MAIN_ROOT}/conf/lm/small.yaml}
flow_config=${flow_config:-${MAIN_ROOT}/conf/flow/small.yaml}
vocoder_config=${vocoder_config:-${MAIN_ROOT}/conf/vocoder/small.yaml}
sample_sets=${sample_sets:-${valid_set} ${test_sets}}

# not_yet N NAME: stages whose implementation has not landed say so instead of pretending
not_yet() {
  log "Stage $1: $2 is not implemented in this version of ttsrl; skipping"
}

# train_model DIR CONFIG MODULE ARGS...: one resumable training run through ${cuda_cmd}
# (torchrun over --ngpu GPUs when more than one), skipped when DIR/.done exists.
train_model() {
  local dir=$1 config=$2 module=$3
  shift 3
  if [ -f "${dir}/.done" ]; then log "${dir}/.done exists; skipping"; return 0; fi
  log "training ${module} (${config}, ${ngpu} GPU) -> ${dir}; log: ${dir}/log/train.log"
  local launcher=python
  [ "${ngpu}" -gt 1 ] && launcher="torchrun --standalone --nproc_per_node ${ngpu}"
  # shellcheck disable=SC2086
  ${cuda_cmd} --gpu "${ngpu}" "${dir}/log/train.log" ${launcher} -m "${module}" \
    --config "${config}" --ngpu "${ngpu}" --exp_dir "${dir}" "$@"
  touch "${dir}/.done"
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
  for dset in ${all_sets}; do
    fdir=${dumpdir}/feats/${dset}
    if [ -f "${fdir}/.done" ]; then log "Stage 2: ${fdir}/.done exists; skipping"; continue; fi
    log "Stage 2: log-mel features of ${datadir}/${dset} (${nj} jobs) -> ${fdir}"
    utils/split_data.sh "${datadir}/${dset}" "${nj}" >/dev/null
    ${train_cmd} JOB=1:"${nj}" "${fdir}/log/feats.JOB.log" python -m ttsrl.bin.compute_feats --fs "${fs}" \
      --data_dir "${datadir}/${dset}/split${nj}/JOB" --out_dir "${fdir}/split${nj}/JOB" --write_stats true
    for f in feats.scp utt2num_frames; do cat "${fdir}/split${nj}"/*/"${f}" | sort > "${fdir}/${f}"; done
    cp "${fdir}/split${nj}/1/mel_conf.yaml" "${fdir}/"
    touch "${fdir}/.done"
  done
  log "Stage 2: the speech tokenizer"
  # shellcheck disable=SC2086
  train_model "${expdir}/tokenizer" "${tokenizer_config}" ttsrl.bin.train_tokenizer ${tokenizer_args} \
    --train_data_dir "${datadir}/${train_set}" --train_feats_dir "${dumpdir}/feats/${train_set}" \
    --valid_data_dir "${datadir}/${valid_set}" --valid_feats_dir "${dumpdir}/feats/${valid_set}" \
    --stats_files "${dumpdir}/feats/${train_set}/split${nj}"/*/stats.npz
fi
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  for dset in ${all_sets}; do
    odir=${dumpdir}/tokens/${dset}
    if [ -f "${odir}/.done" ]; then log "Stage 3: ${odir}/.done exists; skipping"; continue; fi
    log "Stage 3: speech and text tokens of ${datadir}/${dset} -> ${odir}"
    ${cuda_cmd} --gpu "${ngpu}" "${odir}/log/tokenize.log" python -m ttsrl.bin.tokenize_speech \
      --tokenizer_dir "${expdir}/tokenizer" --data_dir "${datadir}/${dset}" --out_dir "${odir}" \
      --feats_scp "${dumpdir}/feats/${dset}/feats.scp" --ngpu "${ngpu}" --report_cer true \
      --metrics_json "${expdir}/tokenizer/metrics.json" --primary_test_set "${test_sets%% *}"
    touch "${odir}/.done"
  done
  log "Stage 3: tokenizer metrics: $(tr -d '\n ' < "${expdir}/tokenizer/metrics.json")"
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  vocab=$(python -c 'import sys; from ttsrl.models.speech_tokenizer import SpeechTokenizer as T
print(T.from_pretrained(sys.argv[1]).codebook_size)' "${expdir}/tokenizer")
  tok=${dumpdir}/tokens
  log "Stage 4: base TTS: codec LM, flow matching${vocoder:+, vocoder ${vocoder}} (codebook ${vocab})"
  train_model "${expdir}/base/lm" "${lm_config}" ttsrl.bin.train_lm --speech_vocab_size "${vocab}" \
    --train_dir "${tok}/${train_set}" --valid_dir "${tok}/${valid_set}" --token_list "${tok}/${train_set}/tokens.txt"
  train_model "${expdir}/base/flow" "${flow_config}" ttsrl.bin.train_flow --speech_vocab_size "${vocab}" \
    --train_dir "${tok}/${train_set}" --train_feats "${dumpdir}/feats/${train_set}/feats.scp" \
    --valid_dir "${tok}/${valid_set}" --valid_feats "${dumpdir}/feats/${valid_set}/feats.scp" \
    --stats "${expdir}/tokenizer/stats.npz"
  if [ "${vocoder}" = vocos ]; then
    train_model "${expdir}/base/vocoder" "${vocoder_config}" ttsrl.bin.train_vocoder \
      --train_data "${datadir}/${train_set}" --valid_data "${datadir}/${valid_set}"
  fi
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  for dset in ${sample_sets}; do
    sdir=${expdir}/base/samples/${dset}
    if [ -f "${sdir}/.done" ]; then log "Stage 5: ${sdir}/.done exists; skipping"; continue; fi
    log "Stage 5: ${num_candidates} candidates per utterance of ${dset} (${nj} jobs) -> ${sdir}"
    # shellcheck disable=SC2086
    ${decode_cmd} --gpu "${ngpu}" JOB=1:"${nj}" "${sdir}/log/sample.JOB.log" python -m ttsrl.bin.sample_lm \
      --lm "${expdir}/base/lm/model.pt" --token_dir "${dumpdir}/tokens/${dset}" --out_dir "${sdir}" \
      --num_candidates "${num_candidates}" --job JOB --num_jobs "${nj}" --ngpu "${ngpu}" --num_threads 1 ${sample_args}
    if [ "${nj}" -gt 1 ]; then  # merge the jobs' outputs (tokens.JOB.scp, logprobs.JOB, finished.JOB)
      cat "${sdir}"/tokens.*.scp | sort > "${sdir}/tokens.scp"
      for f in logprobs finished; do cat "${sdir}/${f}".* | sort > "${sdir}/${f}"; done
    fi
    touch "${sdir}/.done"
  done
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  not_yet 6 "reward models and preference pairs"
fi
if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
  not_yet 7 "preference alignment (${align_method})"
fi
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
  for model in ${decode_models}; do
    for dset in ${test_sets}; do
      ddir=${expdir}/${model}/decode/${dset}
      if [ -f "${ddir}/.done" ]; then log "Stage 8: ${ddir}/.done exists; skipping"; continue; fi
      if [ "${model}" = resynth ]; then src=(--golden_tokens "${dumpdir}/tokens/${dset}/speech.scp")
      else src=(--lm "${expdir}/${model}/lm/model.pt"); fi
      [ "${vocoder}" = vocos ] && src+=(--vocoder_path "${expdir}/base/vocoder/model.pt")
      log "Stage 8: synthesizing ${dset} with ${model} -> ${ddir}"
      # shellcheck disable=SC2086
      ${decode_cmd} --gpu "${ngpu}" "${ddir}/log/synthesize.log" python -m ttsrl.bin.synthesize "${src[@]}" \
        --data_dir "${datadir}/${dset}" --out_dir "${ddir}" --tokenizer_dir "${expdir}/tokenizer" \
        --flow "${expdir}/base/flow/model.pt" --vocoder "${vocoder}" --ngpu "${ngpu}" ${decode_args}
      touch "${ddir}/.done"
    done
  done
fi
if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
  jdir=${expdir}/judge
  log "Stage 9: the CTC judge ASR (trained on ground-truth audio only)"
  # shellcheck disable=SC2086
  train_model "${jdir}" "${judge_config}" ttsrl.bin.train_asr ${judge_args} \
    --train_data_dir "${datadir}/${train_set}" --train_feats_dir "${dumpdir}/feats/${train_set}" \
    --valid_data_dir "${datadir}/${valid_set}" --valid_feats_dir "${dumpdir}/feats/${valid_set}" \
    --stats_files "${dumpdir}/feats/${train_set}/split${nj}"/*/stats.npz
  log "Stage 9: scoring the ground truth and every decoded model of: ${test_sets}"
  ${decode_cmd} "${expdir}/log/score_all.log" python -m ttsrl.bin.score_all --data_root "${datadir}" \
    --exp_dir "${expdir}" --test_sets "${test_sets}" --judge ctc --judge_path "${jdir}/model.pt" \
    --metrics "${score_metrics}" --results "${expdir}/results.json"
  python -m ttsrl.bin.make_report --results "${expdir}/results.json" --out "${expdir}/RESULTS.md"
  log "Stage 9: wrote ${expdir}/results.json and ${expdir}/RESULTS.md"
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
