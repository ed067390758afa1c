#!/usr/bin/env python3
"""Train the flow-matching acoustic model: speech tokens -> log-mel (stage 4).

Usage: python -m ttsrl.bin.train_flow --config conf/flow/small.yaml \\
           --train_dir dump/tokens/train --train_feats dump/feats/train/feats.scp \\
           --valid_dir dump/tokens/dev --valid_feats dump/feats/dev/feats.scp \\
           --speech_vocab_size 1000 --exp_dir exp/base/flow
Resumes from exp_dir/checkpoints; writes exp_dir/model.pt (with the mel stats) and
exp_dir/metrics.json (dev_loss, dev_mel_l1, dev_mcd).
"""
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.flow import FlowTask


def get_parser():
    return _get_parser(FlowTask)


def main(argv=None):
    run_task(FlowTask, argv)


if __name__ == "__main__":
    main()
