#!/usr/bin/env python3
"""Train the CTC judge ASR on ground-truth audio (stage 9): characters from log-mel.

Usage: python -m ttsrl.bin.train_asr --config conf/asr/small.yaml \\
           --train_data_dir data/train --train_feats_dir dump/feats/train \\
           --valid_data_dir data/dev --valid_feats_dir dump/feats/dev --exp_dir exp/judge
Resumes from exp_dir/checkpoints; writes exp_dir/model.pt (weights, mel stats, character list
and config: all the ``ctc`` judge needs) and exp_dir/metrics.json (dev_cer in percent).
"""
from ttsrl.tasks.asr import ASRTask
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task


def get_parser():
    return _get_parser(ASRTask)


def main(argv=None):
    return run_task(ASRTask, argv)


if __name__ == "__main__":
    main()
