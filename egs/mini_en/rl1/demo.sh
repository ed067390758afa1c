#!/usr/bin/env bash
# The demo (`make demo`): every stage of run.sh with every alignment method, with the demo configs
# (${MAIN_ROOT}/conf/<model>/demo.yaml: the small models for fewer steps, a 1.8M flow model), 600
# alignment texts, one DPO round, 60 steps per alignment run, 6 flow steps in synthesis, an emotion
# judge on 3000 utterances, no second ASR judge and no DNSMOS (3.1 s per 2.2-s utterance on 2 cores,
# measured 2026-12-02: 9 windows of 9 s over the repeated clip, as DNSMOS rates short clips; ~90 min
# for the demo's 1800 decoded utterances, against ~11 min for all its other metrics). Its models and
# results go to exp_demo/ (features and tokens to dump_demo/); the table of exp/RESULTS.md is
# run.sh's, with the small configs and DNSMOS.
# Measured 2026-12-08 with the LM trained on the text alone (text_dropout 0.1, decoded at cfg_scale 1), demo judge
# (ground truth reads 25.7 / 36.6 % CER on test / test_hard: the demo judge is weaker than the table's): resynth
# 35.2 / 45.8, base 44.5 / 56.2 (1.26x / 1.23x resynthesis), SIM 0.699; the base's dev candidates read by the
# tokenizer's CTC head at 37.6 % (golden tokens 29.7 %). Stage times on 2 cores (another process ran beside the
# tokenizer): tokenizer 37 min (15 alone), LM 14, flow 14, stages 5-7 ~25, stage 8 ~30, stage 9 ~18 min without
# the headroom report and reward-vs-judge (--headroom_best_of 0 --reward_vs_judge_utts 0).
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
