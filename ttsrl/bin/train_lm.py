#!/usr/bin/env python3
"""Train the codec language model (stage 4).

Usage: python -m ttsrl.bin.train_lm --config conf/lm/small.yaml --train_dir dump/tokens/train \\
           --valid_dir dump/tokens/dev --token_list exp/tokenizer/tokens.txt \\
           --speech_vocab_size 1000 --exp_dir exp/base/lm
Resumes from exp_dir/checkpoints; writes exp_dir/model.pt and exp_dir/metrics.json (dev_token_acc).
"""
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.lm import LMTask


def get_parser():
    return _get_parser(LMTask)


def main(argv=None):
    run_task(LMTask, argv)


if __name__ == "__main__":
    main()
