#!/usr/bin/env bash
# The demo (`make demo`): every stage of run.sh with every alignment method, with the demo configs
# (${MAIN_ROOT}/conf/<model>/demo.yaml: the small models for fewer steps, a 1.8M flow model), 600
# alignment texts, one DPO round, 60 steps per alignment run, 6 flow steps in synthesis, an emotion
# judge on 3000 utterances, no second ASR judge and no DNSMOS (3.1 s per 2.2-s utterance on 2 cores,
# measured 2026-12-02: 9 windows of 9 s over the repeated clip, as DNSMOS rates short clips; ~90 min
# for the demo's 1800 decoded utterances, against ~11 min for all its other metrics). Its models and
# results go to exp_demo/ (features and tokens to dump_demo/); the table of exp/RESULTS.md is
# run.sh's, with the small configs and DNSMOS.
# Usage: ./demo.sh [--stage N] [--stop_stage N] [rl.sh options]
set -euo pipefail

./run.sh \
  --conf_size demo \
  --expdir exp_demo \
  --dumpdir dump_demo \
  --align_set_size 600 \
  --online_iters 1 \
  --align_args "--max_steps 60 --valid_interval 30" \
  --decode_args "--top_k 10 --temperature 0.8 --cfg_scale 1 --flow_n_steps 6" \
  --emotion_judge_args "--max_utts 3000" \
  --second_judge none \
  --score_metrics "wer,cer,sim,f0v,nll" \
  --reward_vs_judge_utts 20 \
  "$@"
