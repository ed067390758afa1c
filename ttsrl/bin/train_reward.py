#!/usr/bin/env python3
"""Train the multi-task reward model on golden speech tokens and data dir labels.

Usage: python -m ttsrl.bin.train_reward --config conf/reward/small.yaml \\
           --train_dir dump/tokens/train --train_data_dir data/train \\
           --valid_dir dump/tokens/dev --valid_data_dir data/dev \\
           --tokenizer_dir exp/tokenizer --speech_vocab_size 1000 --exp_dir exp/reward
The text targets are the token dirs' ctc_text (the transcripts in the speech tokenizer's CTC units, whatever
the LM's text units are); the text vocabulary is <tokenizer_dir>/tokens.txt unless --token_list says otherwise.
Resumes from exp_dir/checkpoints; writes exp_dir/model.pt (load with ttsrl.models.reward.load_reward_model),
exp_dir/tokens.txt (its text vocabulary) and exp_dir/metrics.json (ctc_cer, emo_acc, gender_acc, age_acc,
quality_corr, ...).
"""
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.reward import RewardTask


def get_parser():
    return _get_parser(RewardTask)


def main(argv=None):
    return run_task(RewardTask, argv)


if __name__ == "__main__":
    main()
