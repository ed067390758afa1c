#!/usr/bin/env bash
# The ttsrl recipe: data -> tokenizer -> base TTS -> sampling -> rewards -> alignment -> decoding
# -> scoring. Every corpus' run.sh sets options and calls this script (symlinked as ./rl.sh).
#
# Usage: ./run.sh [options]            (from egs/<corpus>/rl1)
#   e.g. ./run.sh --stage 1 --stop_stage 1
#        ./run.sh --stage 5 --stop-stage 8 --align_method dpo
#        ./run.sh --base_exp /models/base --stage 5 --stop_stage 8   (a base trained elsewhere; stages 1-3 first)
#
# Stages (see README.md; every option is checked before any stage runs):
#   1 data preparation (local/data.sh) and validation           -> data/<set>
#   2 features and speech tokenizer training                     -> dump/feats, exp/tokenizer
#   3 tokenization of every set (--text_token_type)               -> dump/tokens/<set>
#   4 base TTS training: codec LM, flow matching, vocoder         -> exp/base/{lm,flow,vocoder}
#     [--flow_student dmo: speaker encoder, few-step DMO student]  -> exp/base/{speaker,flow_dmo}
#   5 sampling N candidates per (prompt, text)                    -> exp/<model>/samples/<set>
#   6 reward model, candidate scoring, preference pairs           -> exp/reward, pairs.jsonl
#   7 preference alignment (--align_methods)                      -> exp/<method>/lm
#   8 decoding the test sets                                      -> exp/<model>/decode/<set>
#   9 scoring and report                                          -> exp/RESULTS.md, exp/results.json
#
# Options:
#   --stage N / --stop_stage N   first and last stage to run, 1 <= N <= M <= 9 (default 1 and 9)
#   --nj N                       parallel jobs for data processing (default 4)
#   --ngpu N                     GPUs for training; 0 = CPU (default 0)
#   --fs HZ                      sample rate of every data dir (default 16000)
#   --train_set / --valid_set    data sets for training and validation (default train / dev)
#   --test_sets "A B"            sets to decode and score (default "test")
#   --db_dir DIR                 the corpus: where local/data.sh reads (or downloads) it (default: local/data.sh's)
#   --local_data_opts "..."      more options of local/data.sh. Stage 1 runs
#                                  local/data.sh --data_dir <datadir> --fs <fs> [--db_dir <db_dir>] <local_data_opts>
#                                so a local/data.sh declares data_dir, fs and db_dir (setup.sh's stub does)
#   --datadir / --dumpdir / --expdir DIR   where the data dirs, the features and tokens, and the models and
#                                results go (default data, dump, exp)
#   --base_exp DIR               a base TTS trained elsewhere, in the layout stages 2 and 4 write:
#                                DIR/tokenizer (model.pt, tokens.txt), DIR/lm (model.pt [tokens.txt token_type]),
#                                DIR/flow/model.pt [DIR/vocoder/model.pt]; see README.md. It is checked (every
#                                model loads, one codebook, the LM's text units, the mel config, --fs) before
#                                any stage runs; stage 2 then computes the features with the tokenizer's mel
#                                config and trains no tokenizer, stage 3 writes the LM's own text units
#                                (--text_token_type follows them), stage 4 trains nothing, and stages 3 and 5-9
#                                read the models from DIR and never write there (default: none, stages 2/4 train)
#   --align_methods "M ..."      alignment methods of stage 7, each a model tag of stages 8-9
#                                (default dpo; any of: dpo speechalign raft coh diffro grpo grpo_audio;
#                                diffro_<emotion>, e.g. diffro_happy, is DiffRO with that target emotion for every
#                                utterance: emotion control, judged by stage 9's emotion judge as the share of that
#                                emotion; grpo is online RL with the token-level reward (the reward model),
#                                grpo_audio the same with the audio-level reward: flow + vocoder, re-encoded and read
#                                by the tokenizer's CTC head; neither needs pairs, conf/align/grpo.yaml)
#   --align_method M             the same for one method
#   --align_set_size N           training texts sampled for alignment: a prompted subset of train_set,
#                                data/<train_set>_align (default 300)
#   --align_config FILE          config of every method (default ${MAIN_ROOT}/conf/align/<method>.yaml)
#   --align_args "..."           more options for ttsrl.bin.train_align (every method)
#   --num_iters K                SpeechAlign iterations (stages 5-7 repeated with the new policy; default 2)
#   --online_iters "K M:K ..."   iterations of dpo, raft, bon and coh (online rounds: iteration k samples, scores
#                                and pairs with iteration k-1 and learns from it; default 1 = offline): K for
#                                every one of them, M:K for method M (e.g. "dpo:3", or "2 coh:1"). With K > 1
#                                the models are <method>_iter<k>, and <method> links to the last one
#   --reward_config FILE         multi-task reward model config of stage 6 (default ${MAIN_ROOT}/conf/reward/<conf_size>.yaml)
#   --reward_args "..."          more options for ttsrl.bin.train_reward
#   --reward_weights "{...}"     token-level reward of candidates, e.g. "{text: 1.0, quality: 0.2}" (default text only)
#   --pair_margin X              stage 6: best-vs-worst pairs closer than X in reward are dropped (default 0)
#   --headroom_best_of N         stage 9: the base LM samples N candidates per valid_set text; every aligned LM's
#                                samples are compared with the best of N by its reward, all read by the tokenizer's
#                                CTC head (not the judge): headroom_captured in results.json / RESULTS.md under the
#                                valid set (ttsrl.bin.headroom; default 16, 0 = off)
#   --headroom_candidates N      stage 9: samples per valid_set text of every aligned LM for it (default 4)
#   --reward_vs_judge_utts N     stage 9: Spearman of reward vs judge CER, and how often the judge agrees with
#                                best-vs-worst pairs, over the candidates of N dev utterances
#                                (each synthesized and transcribed; default 40, 0 = off) -> exp/reward/metrics.json
#   --conf_size NAME             size of every model config not given below: ${MAIN_ROOT}/conf/<model>/NAME.yaml
#                                (default small, the table's; demo: fewer steps, `make demo`;
#                                base: GPU sizes; tiny: tests)
#   --lm_config / --flow_config  stage 4 configs (default ${MAIN_ROOT}/conf/{lm,flow}/<conf_size>.yaml)
#   --vocoder griffin_lim|vocos  vocoder of stages 4 and 8 (vocos is trained in stage 4)
#   --vocoder_config FILE        stage 4 vocos config (default ${MAIN_ROOT}/conf/vocoder/<conf_size>.yaml)
#   --flow_student none|dmo      stage 4: dmo also distils the flow model into a few-step student (DMOSpeech:
#                                distribution matching + a CTC loss + a speaker-verification loss; ttsrl.bin.train_dmo)
#                                after a speaker encoder for that loss (ttsrl.bin.train_speaker_encoder), also with
#                                --base_exp (the student goes to exp/base/flow_dmo, never into the base). Stage 8 then
#                                decodes resynth_dmo and base_dmo too: a model tag <tag>_dmo is <tag> through the
#                                student (its steps, the renoise sampler, no guidance). Small configs: speaker encoder
#                                ~5 min, DMO ~60 min on 2 cores (default none)
#   --speaker_config / --dmo_config   their configs (default ${MAIN_ROOT}/conf/{speaker,dmo}/<conf_size>.yaml)
#   --sample_sets, --num_candidates, --sample_args   stage 5 sampling (default: the align set and dev, 4)
#   --lm_prompt true|false       whether the codec LM reads the zero-shot prompt (its text and speech tokens)
#                                in stages 4 (training layout), 5, 7, 8 and the KL of 9; false: the prompt conditions
#                                the flow model only, and the LM trains on the text alone (default true)
#   --decode_models "..."        stage 8: models that synthesize the test sets (default: resynth base and the
#                                align methods, and resynth_dmo base_dmo with --flow_student dmo; resynth: golden
#                                tokens; <tag>_dmo: <tag>'s tokens through the DMO student)
#   --decode_args "..."          options of ttsrl.bin.synthesize (sampling, --flow_n_steps, ...)
#   --strict_text true|false     stage 8: a text with letters the LM's text units cannot spell (e.g. Chinese
#                                characters for an English model) fails that utterance, listed with its reason
#                                in exp/<model>/decode/<set>/errors; false: it is synthesized without them and a
#                                warning names them (default true)
#   --decode_nj N                stages 8 and 9: parallel jobs of synthesis (per model and test set) and of
#                                scoring, one CPU thread each when N > 1 (default 1: one job uses every core;
#                                on 2 cores 2 jobs were 1.05x (synthesis) and 1.02x (scoring) as fast, see
#                                bench/decode_jobs.py; with cmd_backend slurm N jobs run on N nodes)
#   --tokenizer_config FILE      speech tokenizer config of stage 2 (default ${MAIN_ROOT}/conf/tokenizer/<conf_size>.yaml)
#   --tokenizer_args "..."       more options for ttsrl.bin.train_tokenizer (e.g. "--max_steps 500")
#   --text_token_type char|phn|bpe   the codec LM's text units (stages 3-8; default char): char = the speech
#                                tokenizer's CTC units; phn = espeak-ng phonemes with word boundaries and stress;
#                                bpe = sentencepiece pieces. phn and bpe units are built once from the training
#                                text (dump/tokens/text_units); the reward model and the CTC rewards read the
#                                transcripts in the CTC units whatever the choice (dump/tokens/<set>/ctc_text).
#                                Token dirs of other units are not reused: stage 3 fails, naming them
#   --bpe_vocab_size N           vocabulary of --text_token_type bpe (default 300)
#   --judge_config FILE          CTC judge ASR config of stage 9 (default ${MAIN_ROOT}/conf/asr/<conf_size>.yaml)
#   --judge_args "..."           more options for ttsrl.bin.train_asr (e.g. "--max_steps 500")
#   --score_metrics "A,B"        stage 9 metrics of decoded models (default wer,cer,sim,f0v,nll,dnsmos;
#                                dnsmos is most of stage 9's time: 3.1 s per 2-s utterance on 2 CPU cores)
#   --emotion_judge true|false   stage 9: train an audio emotion classifier on the ground truth (needs utt2emo)
#                                and add the judged emotion to the scores (default true)
#   --emotion_judge_args "..."   more options for ttsrl.bin.train_emotion_judge (e.g. "--max_utts 3000")
#   --second_judge NAME          stage 9 second-opinion ASR judge (default pocketsphinx; none: skip)
#   --second_judge_models "..."  models it scores besides the ground truth (default base; all: every model)
#   --cmd_backend local|slurm|sge  how parallel jobs and trainings run (cmd.sh; the environment variable
#                                cmd_backend works too): utils/run.pl on this machine, utils/slurm.pl with
#                                conf/slurm.conf, utils/queue.pl with conf/queue.conf (default local)
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
local_data_opts=""      # stage 1: more options of local/data.sh
db_dir=""               # stage 1: the corpus folder, given to local/data.sh as --db_dir (empty: its default)
base_exp=""             # stages 2-9: a base TTS trained elsewhere (tokenizer/ lm/ flow/ [vocoder/]); empty: train it
align_method=""         # stage 7: one alignment method (kept for the single-method form)
align_methods=dpo       # stage 7: alignment methods (dpo speechalign raft coh diffro)
align_set_size=300      # stages 3/5: prompted training texts for alignment (data/<train_set>_align)
align_config=""         # stage 7: one config for every method (empty: ${MAIN_ROOT}/conf/align/<method>.yaml)
align_args=""           # stage 7: extra options of ttsrl.bin.train_align
num_iters=2             # stage 7: SpeechAlign iterations
online_iters=1          # stage 7: iterations (online rounds) of dpo, raft, bon and coh: "K", "dpo:K" or both
conf_size=small         # stages 2-9: size of the model configs not given (${MAIN_ROOT}/conf/<model>/<conf_size>.yaml)
reward_config=""        # stage 6: reward model config (empty: ${MAIN_ROOT}/conf/reward/<conf_size>.yaml)
reward_args=""          # stage 6: extra options of ttsrl.bin.train_reward
reward_weights="{text: 1.0}"  # stage 6: weights of the token-level reward of candidates
pair_margin=0           # stage 6: minimum reward gap of best-vs-worst pairs
reward_vs_judge_utts=40 # stage 9: dev utterances whose candidates are synthesized to correlate reward and judge (0: off)
headroom_best_of=16     # stage 9: base candidates per valid_set text for the headroom report (0: off)
headroom_candidates=4   # stage 9: candidates per valid_set text of every aligned LM for the headroom report
tokenizer_config=""     # stage 2: speech tokenizer config (empty: ${MAIN_ROOT}/conf/tokenizer/<conf_size>.yaml)
tokenizer_args=""       # stage 2: extra options of ttsrl.bin.train_tokenizer
text_token_type=char    # stages 3-8: the codec LM's text units: char (the tokenizer's CTC units), phn or bpe
bpe_vocab_size=300      # stage 3: vocabulary of --text_token_type bpe
judge_config=""         # stage 9: CTC judge ASR config (empty: ${MAIN_ROOT}/conf/asr/<conf_size>.yaml)
judge_args=""           # stage 9: extra options of ttsrl.bin.train_asr
lm_config=""            # stage 4: codec LM config (empty: ${MAIN_ROOT}/conf/lm/<conf_size>.yaml)
flow_config=""          # stage 4: flow-matching config (empty: ${MAIN_ROOT}/conf/flow/<conf_size>.yaml)
vocoder=griffin_lim     # stage 4/8: griffin_lim (no training) or vocos (trained in stage 4)
vocoder_config=""       # stage 4: vocos config (empty: ${MAIN_ROOT}/conf/vocoder/<conf_size>.yaml)
flow_student=none       # stage 4: none, or dmo (a few-step student of the flow model; decoded as <tag>_dmo)
speaker_config=""       # stage 4, dmo: speaker encoder config (empty: ${MAIN_ROOT}/conf/speaker/<conf_size>.yaml)
dmo_config=""           # stage 4, dmo: DMO config (empty: ${MAIN_ROOT}/conf/dmo/<conf_size>.yaml)
sample_sets=""          # stage 5: sets to sample candidates for (empty: the align set and valid_set)
num_candidates=4        # stage 5: candidates per (prompt, text)
sample_args="--top_k 50" # stage 5: sampling options of ttsrl.bin.sample_lm
lm_prompt=true          # stages 5-9: the codec LM reads the zero-shot prompt (false: only the flow model does)
decode_models=""        # stage 8: models to synthesize the test sets with (empty: resynth base + align methods)
decode_args="--top_k 50 --flow_n_steps 10" # stage 8: options of ttsrl.bin.synthesize
decode_nj=1             # stages 8-9: parallel synthesis and scoring jobs
strict_text=true        # stage 8: a text with letters the LM's units cannot spell fails (false: they are dropped)
score_metrics="wer,cer,sim,f0v,nll,dnsmos"  # stage 9: metrics of decoded models
emotion_judge=true      # stage 9: audio emotion classifier trained on the ground truth (when utt2emo exists)
emotion_judge_args=""   # stage 9: extra options of ttsrl.bin.train_emotion_judge
second_judge=pocketsphinx  # stage 9: second-opinion ASR judge (none: skip)
second_judge_models=base   # stage 9: models it scores besides the ground truth (all: every model; 1-3 s/utt)
datadir=data
dumpdir=dump
expdir=exp

. ./path.sh
. ./cmd.sh
cmd_sh_backend=${cmd_backend}
. utils/parse_options.sh || exit 1
# --cmd_backend on the command line: cmd.sh picks the job runners again
[ "${cmd_backend}" = "${cmd_sh_backend}" ] || . ./cmd.sh

if [ $# -ne 0 ]; then
  echo "$0: unexpected arguments: $*" >&2
  exit 1
fi

# ---------------------------------------------------------------- every option is checked here, before any work
fail() { echo "$0: $*" >&2; exit 1; }
# check_int NAME MIN [MAX]: the option --NAME is an integer in MIN..MAX
check_int() {
  local v=${!1} range=">= $2"
  [ $# -lt 3 ] || range="in $2..$3"
  if [[ ! ${v} =~ ^[0-9]{1,9}$ ]] || [ "${v}" -lt "$2" ] || { [ $# -gt 2 ] && [ "${v}" -gt "$3" ]; }; then
    fail "--$1 must be an integer ${range}, got '${v}'"
  fi
}
check_int stage 1 9
check_int stop_stage 1 9
[ "${stage}" -le "${stop_stage}" ] || fail "--stage ${stage} is after --stop_stage ${stop_stage}: nothing would run"
for o in nj fs num_iters num_candidates decode_nj; do check_int "${o}" 1; done
for o in ngpu align_set_size reward_vs_judge_utts headroom_best_of; do check_int "${o}" 0; done
check_int headroom_candidates 1
[ "${headroom_best_of}" -ne 1 ] || fail "--headroom_best_of must be 0 (off) or at least 2, got 1"
[[ ${pair_margin} =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] ||
  fail "--pair_margin must be a number >= 0, got '${pair_margin}'"
case ${vocoder} in griffin_lim|vocos) ;; *) fail "--vocoder must be griffin_lim or vocos, got '${vocoder}'" ;; esac
case ${flow_student} in none|dmo) ;; *) fail "--flow_student must be none or dmo, got '${flow_student}'" ;; esac
# runs STAGE: true when STAGE is in --stage..--stop_stage
runs() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
for o in train_set valid_set test_sets; do [ -n "${!o// /}" ] || fail "--${o} is empty"; done
for f in tokenizer_config judge_config lm_config flow_config vocoder_config reward_config align_config \
         speaker_config dmo_config; do
  [ -z "${!f}" ] || [ -f "${!f}" ] || fail "--${f} ${!f}: no such file"
done

all_sets="${train_set} ${valid_set} ${test_sets}"
# default_config MODEL: ${MAIN_ROOT}/conf/MODEL/<conf_size>.yaml, which must exist
default_config() {
  local f=${MAIN_ROOT}/conf/$1/${conf_size}.yaml
  [ -f "${f}" ] || { echo "$0: --conf_size ${conf_size}: no ${f} (sizes: $(ls "${MAIN_ROOT}/conf/$1" | sed 's/\.yaml$//' | tr '\n' ' '))" >&2; exit 1; }
  echo "${f}"
}
tokenizer_config=${tokenizer_config:-$(default_config tokenizer)}
judge_config=${judge_config:-$(default_config asr)}
lm_config=${lm_config:-$(default_config lm)}
flow_config=${flow_config:-$(default_config flow)}
vocoder_config=${vocoder_config:-$(default_config vocoder)}
if [ "${flow_student}" = dmo ]; then
  speaker_config=${speaker_config:-$(default_config speaker)}
  dmo_config=${dmo_config:-$(default_config dmo)}
fi
reward_config=${reward_config:-$(default_config reward)}
align_methods=${align_method:-${align_methods}}
[ -n "${align_methods// /}" ] || ! runs 7 || fail "--align_methods is empty"
# pair_mode METHOD: which pairs of stage 6 the alignment method METHOD learns from
pair_mode() {
  case $1 in
    dpo|coh|diffro|diffro_?*) echo best_worst ;;  # diffro_<emotion>: DiffRO toward one target emotion
    speechalign) echo golden ;;
    raft|bon) echo best ;;
    grpo|grpo_audio) echo none ;;  # online RL: it samples and scores its own candidates
    *) fail "unknown --align_methods entry '$1' (dpo speechalign raft bon coh diffro diffro_<emotion> grpo grpo_audio)" ;;
  esac
}
for method in ${align_methods}; do pair_mode "${method}" >/dev/null || exit 1; done
decode_threads=0; [ "${decode_nj}" -gt 1 ] && decode_threads=1  # parallel jobs: one thread each (0: torch's default)
case ${lm_prompt} in  # --lm_prompt of train_lm, sample_lm, train_align, synthesize and lm_kl (one meaning in each)
  true|false) ;;
  *) echo "$0: --lm_prompt must be true or false, got '${lm_prompt}'" >&2; exit 1 ;;
esac
case ${text_token_type} in
  char|phn|bpe) ;;
  *) echo "$0: --text_token_type must be char, phn or bpe, got '${text_token_type}'" >&2; exit 1 ;;
esac
if [[ ! ${bpe_vocab_size} =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: --bpe_vocab_size must be a positive number, got '${bpe_vocab_size}'" >&2
  exit 1
fi
align_set=${train_set}_align
[ "${align_set_size}" -gt 0 ] || align_set=""
[ -n "${align_set}" ] || ! runs 7 || fail "stage 7 needs --align_set_size > 0"
sample_sets=${sample_sets:-${align_set} ${valid_set}}
declare -A online_iters_of=()  # --online_iters parsed once: method (or "all") -> K
for w in ${online_iters}; do
  if [[ ! ${w} =~ ^((dpo|raft|bon|coh):)?([1-9][0-9]*)$ ]]; then
    echo "$0: --online_iters: '${w}' is neither K nor METHOD:K (METHOD one of dpo raft bon coh, K >= 1)" >&2
    exit 1
  fi
  online_iters_of[${BASH_REMATCH[2]:-all}]=${BASH_REMATCH[3]}
done
# method_iters METHOD: stage 7's iterations of METHOD (DiffRO samples its own sequences at every step)
method_iters() {
  case $1 in
    speechalign) echo "${num_iters}" ;;
    diffro|diffro_*|grpo|grpo_audio) echo 1 ;;
    *) echo "${online_iters_of[$1]:-${online_iters_of[all]:-1}}" ;;
  esac
}
if runs 7; then  # an exp dir of another number of iterations is refused now, not after stages 1-6
  for method in ${align_methods}; do
    iters=$(method_iters "${method}")
    if { [ "${iters}" -gt 1 ] && [ -d "${expdir}/${method}" ] && [ ! -L "${expdir}/${method}" ]; } ||
       { [ "${iters}" -eq 1 ] && [ -L "${expdir}/${method}" ]; } || [ -e "${expdir}/${method}_iter$((iters + 1))" ]; then
      fail "${expdir}/${method} is from a run with another number of iterations; move it away first"
    fi
  done
fi
if [ -z "${decode_models}" ]; then  # iterated methods: every iteration (<method> = the last one)
  decode_models="resynth base"
  [ "${flow_student}" != dmo ] || decode_models+=" resynth_dmo base_dmo"
  for m in ${align_methods}; do
    for k in $(seq 1 $(($(method_iters "${m}") - 1))); do decode_models+=" ${m}_iter${k}"; done
    decode_models+=" ${m}"
  done
fi

if [ -n "${base_exp}" ] && [ "${stop_stage}" -ge 2 ]; then  # the last check: it loads the models
  # every model of the base loads and fits the others; its LM's text units and its tokenizer's mel config
  base_info=$(python -m ttsrl.bin.check_base_exp --base_exp "${base_exp}" --fs "${fs}" --vocoder "${vocoder}") ||
    fail "--base_exp ${base_exp} cannot be used (the reason is above)"
  base_units=$(sed -n 's/^token_type //p' <<< "${base_info}")
  base_mel_args=$(sed -n 's/^mel_args *//p' <<< "${base_info}")
  [ "${base_units}" = "${text_token_type}" ] ||
    echo "$0: --base_exp: its LM reads ${base_units} text units; --text_token_type ${text_token_type} becomes ${base_units}" >&2
  text_token_type=${base_units}
fi
base_dir=${base_exp:-${expdir}/base}           # lm/ flow/ [vocoder/] of the base TTS
tokenizer_dir=${expdir}/tokenizer
[ -z "${base_exp}" ] || tokenizer_dir=${base_exp}/tokenizer
base_lm=${base_dir}/lm/model.pt
# lm_of MODEL: the codec LM of a model tag of stages 8-9 (base: the base LM, wherever it is)
lm_of() { if [ "$1" = base ]; then echo "${base_lm}"; else echo "${expdir}/$1/lm/model.pt"; fi; }
speaker_dir=${expdir}/base/speaker  # --flow_student dmo: the speaker encoder of its SV loss
dmo_dir=${expdir}/base/flow_dmo     # --flow_student dmo: the student (student/model.pt), never inside --base_exp
if runs 8 && [ "${flow_student}" != dmo ] && [ ! -f "${dmo_dir}/student/model.pt" ]; then
  for model in ${decode_models}; do
    [[ ${model} != *_dmo ]] || fail "--decode_models ${model}: no DMO student (${dmo_dir}/student/model.pt); add --flow_student dmo"
  done
fi
# student_steps: the sampling steps the DMO student was trained for (its saved options)
student_steps() {
  python -c 'import sys; from ttsrl.utils.checkpoint import load_checkpoint
print(load_checkpoint(sys.argv[1])["config"]["dmo"]["student_steps"])' "${dmo_dir}/student/model.pt"
}

# tokenizer_sum: md5 of the speech tokenizer's weights; stage 3 writes it into each token dir's .done marker
tokenizer_sum() { md5sum < "${tokenizer_dir}/model.pt" | cut -d' ' -f1; }
# check_token_source DIR: fails when the token dir DIR was made with another speech tokenizer (a --base_exp
# given or changed after stage 3, a retrained tokenizer); markers of older runs are empty and not checked
check_token_source() {
  local made
  made=$(cat "$1/.done" 2>/dev/null || true)
  if [ -n "${made}" ] && [ -f "${tokenizer_dir}/model.pt" ] && [ "${made}" != "$(tokenizer_sum)" ]; then
    fail "$1 holds the tokens of another speech tokenizer than ${tokenizer_dir}: remove it (and the models" \
      "trained on it) or use another --dumpdir"
  fi
}
if [ "${stop_stage}" -ge 3 ]; then
  for dset in ${all_sets} ${align_set}; do check_token_source "${dumpdir}/tokens/${dset}"; done
fi

# check_text_units DIR: fails when the token dir DIR holds other text units than --text_token_type
check_text_units() {
  local f=$1/token_type
  if [ -f "${f}" ] && [ "$(cat "${f}")" != "${text_token_type}" ]; then
    echo "$0: $1 holds $(cat "${f}") text units, not --text_token_type ${text_token_type}:" \
      "remove it (and the models trained on it) or use another --dumpdir" >&2
    exit 1
  fi
}

# codebook_size: the speech tokenizer's codebook (the speech vocabulary of the LM and the reward model)
codebook_size() {
  python -c 'import sys; from ttsrl.models.speech_tokenizer import SpeechTokenizer as T
print(T.from_pretrained(sys.argv[1]).codebook_size)' "${tokenizer_dir}"
}

# train_model DIR CONFIG MODULE ARGS...: one resumable training run through ${cuda_cmd}
# (torchrun over --ngpu GPUs when more than one), skipped when DIR/.done exists.
train_model() {
  local dir=$1 config=$2 module=$3
  shift 3
  if [ -f "${dir}/.done" ]; then log "${dir}/.done exists; skipping"; return 0; fi
  log "training ${module} (${config}, ${ngpu} GPU) -> ${dir}; log: ${dir}/log/train.log"
  local launcher=python t0=${SECONDS}
  [ "${ngpu}" -gt 1 ] && launcher="torchrun --standalone --nproc_per_node ${ngpu}"
  # shellcheck disable=SC2086
  ${cuda_cmd} --gpu "${ngpu}" "${dir}/log/train.log" ${launcher} -m "${module}" \
    --config "${config}" --ngpu "${ngpu}" --exp_dir "${dir}" "$@"
  touch "${dir}/.done"
  log "${dir}: trained in $(((SECONDS - t0) / 60)) min"
}

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  if [ -f "${datadir}/.stage1.done" ]; then
    log "Stage 1: data preparation: ${datadir}/.stage1.done exists; skipping"
  else
    data_opts=(--data_dir "${datadir}" --fs "${fs}")
    [ -z "${db_dir}" ] || data_opts+=(--db_dir "${db_dir}")
    log "Stage 1: data preparation: local/data.sh ${data_opts[*]} ${local_data_opts}"
    # shellcheck disable=SC2086
    local/data.sh "${data_opts[@]}" ${local_data_opts}
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
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${nj}" "${fdir}/log/feats.JOB.log" python -m ttsrl.bin.compute_feats --fs "${fs}" \
      --data_dir "${datadir}/${dset}/split${nj}/JOB" --out_dir "${fdir}/split${nj}/JOB" --write_stats true \
      ${base_mel_args:-}
    for f in feats.scp utt2num_frames; do cat "${fdir}/split${nj}"/*/"${f}" | sort > "${fdir}/${f}"; done
    cp "${fdir}/split${nj}/1/mel_conf.yaml" "${fdir}/"
    touch "${fdir}/.done"
  done
  if [ -n "${base_exp}" ]; then
    log "Stage 2: --base_exp: the speech tokenizer is ${tokenizer_dir} (not trained)"
  else
    log "Stage 2: the speech tokenizer"
    # shellcheck disable=SC2086
    train_model "${expdir}/tokenizer" "${tokenizer_config}" ttsrl.bin.train_tokenizer ${tokenizer_args} \
      --train_data_dir "${datadir}/${train_set}" --train_feats_dir "${dumpdir}/feats/${train_set}" \
      --valid_data_dir "${datadir}/${valid_set}" --valid_feats_dir "${dumpdir}/feats/${valid_set}" \
      --stats_files "${dumpdir}/feats/${train_set}/split${nj}"/*/stats.npz
  fi
fi
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  for dset in ${all_sets} ${align_set}; do check_text_units "${dumpdir}/tokens/${dset}"; done  # before any work
  if [ -n "${align_set}" ] && [ ! -f "${datadir}/${align_set}/.done" ]; then
    log "Stage 3: ${align_set_size} prompted texts of ${train_set} for alignment -> ${datadir}/${align_set}"
    python -m ttsrl.bin.make_prompted_subset --num_utts "${align_set_size}" "${datadir}/${train_set}" \
      "${datadir}/${align_set}"
    touch "${datadir}/${align_set}/.done"
  fi
  udir=${dumpdir}/tokens/text_units  # the LM's text units unless char (the tokenizer's CTC units)
  if [ -n "${base_exp}" ] && [ -f "${base_dir}/lm/tokens.txt" ]; then
    udir=${base_dir}/lm  # a base LM's own units (any type): the token dirs must index its text vocabulary
    log "Stage 3: --base_exp: the texts in the LM's ${text_token_type} units (${udir}/tokens.txt)"
  fi
  text_units=(--text_token_type "${text_token_type}")
  if [ "${text_token_type}" != char ] || [ "${udir}" = "${base_dir}/lm" ]; then
    text_units+=(--text_token_list "${udir}/tokens.txt")
  fi
  [ "${text_token_type}" = bpe ] && text_units+=(--bpemodel "${udir}/bpe.model")
  if [ "${text_token_type}" != char ] && [ "${udir}" != "${base_dir}/lm" ]; then
    check_text_units "${udir}"
    if [ ! -f "${udir}/.done" ]; then
      log "Stage 3: ${text_token_type} units of ${datadir}/${train_set}/text -> ${udir}"
      bpe=(); [ "${text_token_type}" = bpe ] && bpe=(--bpe_vocab_size "${bpe_vocab_size}")
      python -m ttsrl.bin.tokenize_text --token_type "${text_token_type}" --input "${datadir}/${train_set}/text" \
        --units_dir "${udir}" "${bpe[@]}"
      touch "${udir}/.done"
    fi
  fi
  for dset in ${all_sets} ${align_set}; do
    odir=${dumpdir}/tokens/${dset}
    if [ -f "${odir}/.done" ]; then
      check_token_source "${odir}"  # the tokenizer stage 2 just trained may be another one
      log "Stage 3: ${odir}/.done exists; skipping"
      continue
    fi
    log "Stage 3: speech and text tokens of ${datadir}/${dset} -> ${odir}"
    fset=${dset}
    [ "${dset}" = "${align_set}" ] && fset=${train_set}  # a subset: its features are the training set's
    ${cuda_cmd} --gpu "${ngpu}" "${odir}/log/tokenize.log" python -m ttsrl.bin.tokenize_speech \
      --tokenizer_dir "${tokenizer_dir}" --data_dir "${datadir}/${dset}" --out_dir "${odir}" \
      --feats_scp "${dumpdir}/feats/${fset}/feats.scp" --ngpu "${ngpu}" --report_cer true \
      --metrics_json "${expdir}/tokenizer/metrics.json" --primary_test_set "${test_sets%% *}" "${text_units[@]}"
    tokenizer_sum > "${odir}/.done"
  done
  log "Stage 3: tokenizer metrics: $(tr -d '\n ' < "${expdir}/tokenizer/metrics.json")"
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ -n "${base_exp}" ]; then
  log "Stage 4: --base_exp: the base TTS is ${base_dir} (lm, flow$([ "${vocoder}" != vocos ] || echo ", vocoder"); nothing trained)"
elif [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  vocab=$(codebook_size)
  tok=${dumpdir}/tokens
  log "Stage 4: base TTS: codec LM, flow matching${vocoder:+, vocoder ${vocoder}} (codebook ${vocab})"
  train_model "${expdir}/base/lm" "${lm_config}" ttsrl.bin.train_lm --speech_vocab_size "${vocab}" \
    --train_dir "${tok}/${train_set}" --valid_dir "${tok}/${valid_set}" --token_list "${tok}/${train_set}/tokens.txt" \
    --utt2spk "${datadir}/${train_set}/utt2spk" --lm_prompt "${lm_prompt}"
  train_model "${expdir}/base/flow" "${flow_config}" ttsrl.bin.train_flow --speech_vocab_size "${vocab}" \
    --train_dir "${tok}/${train_set}" --train_feats "${dumpdir}/feats/${train_set}/feats.scp" \
    --valid_dir "${tok}/${valid_set}" --valid_feats "${dumpdir}/feats/${valid_set}/feats.scp" \
    --stats "${tokenizer_dir}/stats.npz"
  if [ "${vocoder}" = vocos ]; then
    train_model "${expdir}/base/vocoder" "${vocoder_config}" ttsrl.bin.train_vocoder \
      --train_data "${datadir}/${train_set}" --valid_data "${datadir}/${valid_set}"
  fi
fi
if runs 4 && [ "${flow_student}" = dmo ]; then  # also with --base_exp: the student is trained here, from its flow model
  log "Stage 4: the speaker encoder and the few-step DMO student of ${base_dir}/flow"
  feats=${dumpdir}/feats
  train_model "${speaker_dir}" "${speaker_config}" ttsrl.bin.train_speaker_encoder \
    --train_data_dir "${datadir}/${train_set}" --train_feats "${feats}/${train_set}/feats.scp" \
    --valid_data_dir "${datadir}/${valid_set}" --valid_feats "${feats}/${valid_set}/feats.scp" \
    --stats "${tokenizer_dir}/stats.npz"
  train_model "${dmo_dir}" "${dmo_config}" ttsrl.bin.train_dmo --teacher "${base_dir}/flow/model.pt" \
    --tokenizer_dir "${tokenizer_dir}" --speaker_encoder "${speaker_dir}" \
    --train_dir "${dumpdir}/tokens/${train_set}" --train_feats "${feats}/${train_set}/feats.scp" \
    --train_data_dir "${datadir}/${train_set}" --valid_dir "${dumpdir}/tokens/${valid_set}" \
    --valid_feats "${feats}/${valid_set}/feats.scp" --valid_data_dir "${datadir}/${valid_set}"
fi
# sample_candidates LM SET OUT: stage 5's N candidates per (prompt, text) of SET, skipped when OUT/.done exists
sample_candidates() {
  local lm=$1 dset=$2 sdir=$3
  if [ -f "${sdir}/.done" ]; then log "${sdir}/.done exists; skipping"; return 0; fi
  log "${num_candidates} candidates per utterance of ${dset} from ${lm} (${nj} jobs) -> ${sdir}"
  # shellcheck disable=SC2086
  ${decode_cmd} --gpu "${ngpu}" JOB=1:"${nj}" "${sdir}/log/sample.JOB.log" python -m ttsrl.bin.sample_lm \
    --lm "${lm}" --token_dir "${dumpdir}/tokens/${dset}" --out_dir "${sdir}" \
    --num_candidates "${num_candidates}" --job JOB --num_jobs "${nj}" --ngpu "${ngpu}" --num_threads 1 \
    --lm_prompt "${lm_prompt}" ${sample_args}
  if [ "${nj}" -gt 1 ]; then  # merge the jobs' outputs (tokens.JOB.scp, logprobs.JOB, finished.JOB)
    cat "${sdir}"/tokens.*.scp | sort > "${sdir}/tokens.scp"
    for f in logprobs finished; do cat "${sdir}/${f}".* | sort > "${sdir}/${f}"; done
  fi
  touch "${sdir}/.done"
}

# score_and_pair SAMPLES SET: stage 6's token-level rewards of the candidates (SAMPLES/rewards.tsv)
# and the pair files of every mode (SAMPLES/pairs/{best_worst,golden,best}/pairs.jsonl)
score_and_pair() {
  local sdir=$1 dset=$2 mode
  if [ -f "${sdir}/pairs/.done" ]; then log "${sdir}/pairs/.done exists; skipping"; return 0; fi
  log "rewards of the candidates in ${sdir} (${reward_weights}) and preference pairs"
  ${cuda_cmd} --gpu "${ngpu}" "${sdir}/log/score_candidates.log" python -m ttsrl.bin.score_candidates \
    --reward_model "${expdir}/reward" --samples_dir "${sdir}" --token_dir "${dumpdir}/tokens/${dset}" \
    --weights "${reward_weights}" --out "${sdir}/rewards.tsv"
  for mode in best_worst golden best; do
    python -m ttsrl.bin.make_pairs --samples_dir "${sdir}" --out_dir "${sdir}/pairs/${mode}" --mode "${mode}" \
      --rewards "${sdir}/rewards.tsv" --token_dir "${dumpdir}/tokens/${dset}" --margin "${pair_margin}"
  done
  touch "${sdir}/pairs/.done"
}

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  for dset in ${sample_sets}; do
    log "Stage 5: sampling ${dset} with the base LM"
    sample_candidates "${base_lm}" "${dset}" "${expdir}/base/samples/${dset}"
  done
fi
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  vocab=$(codebook_size)
  log "Stage 6: the multi-task reward model (text CTC, emotion, gender, age, quality) on golden tokens"
  # shellcheck disable=SC2086
  train_model "${expdir}/reward" "${reward_config}" ttsrl.bin.train_reward ${reward_args} \
    --speech_vocab_size "${vocab}" --tokenizer_dir "${tokenizer_dir}" --train_dir "${dumpdir}/tokens/${train_set}" \
    --train_data_dir "${datadir}/${train_set}" --valid_dir "${dumpdir}/tokens/${valid_set}" \
    --valid_data_dir "${datadir}/${valid_set}"
  for dset in ${valid_set} ${test_sets}; do  # cheap: re-run every time, so a retrained model is always reported
    ${decode_cmd} "${expdir}/reward/log/eval_${dset}.log" python -m ttsrl.bin.eval_reward --reward "${expdir}/reward" \
      --token_dir "${dumpdir}/tokens/${dset}" --data_dir "${datadir}/${dset}" \
      --metrics_json "${expdir}/reward/metrics.json" --primary_test_set "${test_sets%% *}"
  done
  log "Stage 6: reward model metrics: $(tr -d '\n ' < "${expdir}/reward/metrics.json")"
  for dset in ${sample_sets}; do
    log "Stage 6: rewards and pairs of ${dset}"
    score_and_pair "${expdir}/base/samples/${dset}" "${dset}"
  done
fi
if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
  tok=${dumpdir}/tokens
  for method in ${align_methods}; do
    pmode=$(pair_mode "${method}")  # which pairs the method learns from (stage 6 wrote every mode)
    algo=${method%%_*}  # the method of ttsrl.bin.train_align (diffro_happy -> diffro)
    conf=${align_config:-${MAIN_ROOT}/conf/align/${algo/bon/raft}.yaml}
    common=(--method "${algo}" --token_dir "${tok}/${align_set}" --valid_token_dir "${tok}/${valid_set}"
            --lm_prompt "${lm_prompt}")
    [ "${algo}" = diffro ] && common+=(--reward_model "${expdir}/reward")
    [[ ${method} == diffro_* ]] && common+=(--target_emotion "${method#diffro_}")
    if [ "${method}" = grpo ]; then
      common+=(--reward_model "${expdir}/reward")
    elif [ "${method}" = grpo_audio ]; then  # synthesized with the align set's (and the valid set's) prompts
      common+=(--reward audio --data_dir "${datadir}/${align_set}" --valid_data_dir "${datadir}/${valid_set}"
               --tokenizer_dir "${tokenizer_dir}" --flow "${base_dir}/flow/model.pt")
      [ "${vocoder}" != vocos ] || common+=(--vocoder vocos --vocoder_path "${base_dir}/vocoder/model.pt")
    fi
    # iteration k > 1 samples the align set and the valid set with iteration k-1, its init and reference
    # (iteration 1 learns from stage 5's base samples); validation pairs of an older policy would rank
    # SpeechAlign's golden tokens, or a round's chosen samples, against the wrong reference
    iters=$(method_iters "${method}")  # another number of iterations than an existing exp dir's: refused above
    init=${base_lm}
    sroot=${expdir}/base/samples
    for k in $(seq 1 "${iters}"); do
      adir=${expdir}/${method}
      [ "${iters}" -eq 1 ] || adir=${expdir}/${method}_iter${k}
      if [ "${k}" -gt 1 ]; then
        sroot=${adir}/samples
        for dset in ${align_set} ${valid_set}; do
          log "Stage 7: ${method} iteration ${k}: sampling ${dset} with ${init}"
          sample_candidates "${init}" "${dset}" "${sroot}/${dset}"
          score_and_pair "${sroot}/${dset}" "${dset}"
        done
      fi
      pairs=()
      if [ "${pmode}" = none ]; then
        log "Stage 7: ${method} online on the texts of ${align_set} (no pairs)"
      else
        log "Stage 7: ${method} (iteration ${k}/${iters}) on the ${pmode} pairs of ${align_set}"
        pairs=(--pairs "${sroot}/${align_set}/pairs/${pmode}/pairs.jsonl"
               --valid_pairs "${sroot}/${valid_set}/pairs/${pmode}/pairs.jsonl")
      fi
      # shellcheck disable=SC2086
      train_model "${adir}/lm" "${conf}" ttsrl.bin.train_align "${common[@]}" --init_lm "${init}" "${pairs[@]}" \
        ${align_args}
      init=${adir}/lm/model.pt
    done
    if [ "${iters}" -gt 1 ]; then
      ln -sfn "${method}_iter${iters}" "${expdir}/${method}"  # the model tag of the last iteration
    fi
  done
fi
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
  for model in ${decode_models}; do
    for dset in ${test_sets}; do
      ddir=${expdir}/${model}/decode/${dset}
      if [ -f "${ddir}/.done" ]; then log "Stage 8: ${ddir}/.done exists; skipping"; continue; fi
      tokens_of=${model%_dmo}  # <tag>_dmo: <tag>'s tokens through the DMO student
      if [ "${tokens_of}" = resynth ]; then src=(--golden_tokens "${dumpdir}/tokens/${dset}/speech.scp")
      else src=(--lm "$(lm_of "${tokens_of}")"); fi
      flow=(--flow "${base_dir}/flow/model.pt")
      [ "${tokens_of}" = "${model}" ] ||
        flow=(--flow "${dmo_dir}/student/model.pt" --flow_solver renoise --flow_n_steps "$(student_steps)" --flow_cfg_scale 0)
      [ "${vocoder}" = vocos ] && src+=(--vocoder_path "${base_dir}/vocoder/model.pt")
      log "Stage 8: synthesizing ${dset} with ${model} (${decode_nj} jobs) -> ${ddir}"
      rm -f "${ddir}"/wav.*.scp "${ddir}"/errors.* "${ddir}"/rtf.*  # lists of an earlier run's jobs
      # shellcheck disable=SC2086
      ${decode_cmd} --gpu "${ngpu}" JOB=1:"${decode_nj}" "${ddir}/log/synthesize.JOB.log" \
        python -m ttsrl.bin.synthesize "${src[@]}" --job JOB --num_jobs "${decode_nj}" --num_threads "${decode_threads}" \
        --data_dir "${datadir}/${dset}" --out_dir "${ddir}" --tokenizer_dir "${tokenizer_dir}" \
        --vocoder "${vocoder}" --ngpu "${ngpu}" --lm_prompt "${lm_prompt}" \
        --strict_text "${strict_text}" ${decode_args} "${flow[@]}"
      if [ "${decode_nj}" -gt 1 ]; then  # merge the jobs' lists (wav.JOB.scp, errors.JOB)
        cat "${ddir}"/wav.*.scp | sort > "${ddir}/wav.scp"
        cat "${ddir}"/errors.* | sort > "${ddir}/errors"
      fi
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
  emo=()
  if [ "${emotion_judge}" = true ] && [ -f "${datadir}/${train_set}/utt2emo" ]; then
    edir=${expdir}/emotion_judge
    if [ ! -f "${edir}/.done" ]; then
      log "Stage 9: the emotion judge (audio features, trained on ground-truth audio only) -> ${edir}"
      # shellcheck disable=SC2086
      ${decode_cmd} "${edir}/log/train.log" python -m ttsrl.bin.train_emotion_judge ${emotion_judge_args} \
        --train_data_dir "${datadir}/${train_set}" --valid_data_dir "${datadir}/${valid_set}" \
        --test_data_dirs "$(for s in ${test_sets}; do printf '%s ' "${datadir}/${s}"; done)" --out_dir "${edir}"
      touch "${edir}/.done"
    fi
    emo=(--emo_judge "${edir}/model.npz")
  fi
  log "Stage 9: scoring the ground truth and every decoded model of: ${test_sets} (${decode_nj} jobs)"
  ${decode_cmd} JOB=1:"${decode_nj}" "${expdir}/log/score_all.JOB.log" python -m ttsrl.bin.score_all \
    --job JOB --num_jobs "${decode_nj}" --num_threads "${decode_threads}" --data_root "${datadir}" \
    --exp_dir "${expdir}" --test_sets "${test_sets}" --judge ctc --judge_path "${jdir}/model.pt" \
    --metrics "${score_metrics}" --results "${expdir}/results.json" --second_judge "${second_judge}" \
    --second_judge_models "${second_judge_models}" "${emo[@]}"
  mkdir -p "${expdir}/log"
  for model in ${decode_models}; do  # kl to the base LM and alignment training time of each aligned LM
    { [ "${model}" != base ] && [ -f "${expdir}/${model}/lm/model.pt" ]; } || continue
    train_metrics=("${expdir}/${model}/lm/metrics.json")
    target=$(basename "$(readlink -f "${expdir}/${model}")")  # speechalign -> speechalign_iter<K>
    if [[ ${target} =~ ^(.+)_iter([0-9]+)$ ]]; then  # an iteration's time includes the ones before it
      method=${BASH_REMATCH[1]}; last=${BASH_REMATCH[2]}; train_metrics=()
      for ((i = 1; i <= last; i++)); do train_metrics+=("${expdir}/${method}_iter${i}/lm/metrics.json"); done
    fi
    for dset in ${test_sets}; do
      python -m ttsrl.bin.lm_kl --lm "${expdir}/${model}/lm/model.pt" --ref_lm "${base_lm}" \
        --token_dir "${dumpdir}/tokens/${dset}" --results "${expdir}/results.json" --model_tag "${model}" \
        --test_set "${dset}" --lm_prompt "${lm_prompt}" --train_metrics "${train_metrics[@]}" \
        > "${expdir}/log/kl_${model}_${dset}.json"
    done
  done
  vdir=${expdir}/reward/vs_judge/${valid_set}
  if [ "${reward_vs_judge_utts}" -gt 0 ] && [ -f "${expdir}/base/samples/${valid_set}/rewards.tsv" ] \
     && [ ! -f "${vdir}/.done" ]; then
    log "Stage 9: reward vs judge: Spearman over the candidates of ${reward_vs_judge_utts} ${valid_set} utterances"
    ${decode_cmd} "${vdir}/log/reward_vs_judge.log" python -m ttsrl.bin.reward_vs_judge \
      --samples_dir "${expdir}/base/samples/${valid_set}" --data_dir "${datadir}/${valid_set}" \
      --tokenizer_dir "${tokenizer_dir}" --flow "${base_dir}/flow/model.pt" --judge_path "${jdir}/model.pt" \
      --out_dir "${vdir}" --num_utts "${reward_vs_judge_utts}" --metrics_json "${expdir}/reward/metrics.json"
    touch "${vdir}/.done"
  fi
  hmodels=(); haudio=()  # the headroom: every aligned LM's samples against the base's best of N by its reward
  for model in ${decode_models}; do
    { [ "${model}" != base ] && [ -f "${expdir}/${model}/lm/model.pt" ]; } || continue
    hmodels+=("${model}=${expdir}/${model}/lm/model.pt")
    [[ ${model} != grpo_audio* ]] || haudio+=("${model}")
  done
  if [ "${headroom_best_of}" -gt 0 ] && [ ${#hmodels[@]} -gt 0 ]; then
    log "Stage 9: headroom on ${valid_set}: ${headroom_candidates} samples of each aligned LM vs the best of ${headroom_best_of} of base"
    hargs=()
    [ ${#haudio[@]} -eq 0 ] || hargs=(--audio_models "${haudio[@]}" --data_dir "${datadir}/${valid_set}"
                                      --flow "${base_dir}/flow/model.pt" --vocoder "${vocoder}")
    [ ${#haudio[@]} -eq 0 ] || [ "${vocoder}" != vocos ] || hargs+=(--vocoder_path "${base_dir}/vocoder/model.pt")
    # shellcheck disable=SC2086
    ${decode_cmd} --gpu "${ngpu}" "${expdir}/headroom/${valid_set}/log/headroom.log" python -m ttsrl.bin.headroom \
      --token_dir "${dumpdir}/tokens/${valid_set}" --tokenizer_dir "${tokenizer_dir}" --base_lm "${base_lm}" \
      --models "${hmodels[@]}" --reward_model "${expdir}/reward" --reward_weights "${reward_weights}" \
      --out_dir "${expdir}/headroom/${valid_set}" --results "${expdir}/results.json" --set_name "${valid_set}" \
      --best_of "${headroom_best_of}" --num_candidates "${headroom_candidates}" --lm_prompt "${lm_prompt}" \
      --ngpu "${ngpu}" "${hargs[@]}" ${sample_args}
  fi
  # RESULTS.md: every set of results.json (the valid set's headroom too); the page: the test sets
  python -m ttsrl.bin.make_report --results "${expdir}/results.json" --out "${expdir}/RESULTS.md" \
    --html_dir "${expdir}/report" --exp_dir "${expdir}" --data_dir "${datadir}" --test_sets "${test_sets}"
  log "Stage 9: wrote ${expdir}/results.json, ${expdir}/RESULTS.md and ${expdir}/report/index.html"
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
