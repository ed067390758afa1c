#!/usr/bin/env python3
"""Train the supervised speech tokenizer (FSQ tokens + CTC text head + mel head) on dumped log-mels (stage 2).

Writes a self-contained tokenizer directory (see ttsrl.tasks.tokenizer)::

    <exp_dir>/model.pt  config.yaml  tokens.txt  stats.npz  metrics.json  train.log  tensorboard/  checkpoints/

Training resumes from <exp_dir>/checkpoints by itself; metrics.json holds ctc_cer_<valid set>,
codebook_perplexity and codebook_usage of the best model.

Usage:
    python -m ttsrl.bin.train_tokenizer --config conf/tokenizer/small.yaml \\
        --train_data_dir data/train --train_feats_dir dump/feats/train \\
        --valid_data_dir data/dev --valid_feats_dir dump/feats/dev \\
        --stats_files dump/feats/train/split4/*/stats.npz --exp_dir exp/tokenizer --ngpu 0
    # override any option of the YAML file:
    python -m ttsrl.bin.train_tokenizer --config conf/tokenizer/tiny.yaml --max_steps 3 \\
        --model_conf d_model=64 ...
"""

from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.tokenizer import TokenizerTask
from ttsrl.utils.cli import exit_on_bad_input


def get_parser():
    return _get_parser(TokenizerTask)


def main(argv=None):
    return exit_on_bad_input(lambda: run_task(TokenizerTask, argv))


if __name__ == "__main__":
    main()
