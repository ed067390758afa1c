#!/usr/bin/env python3
"""Train the Vocos-style vocoder on the audio of Kaldi data dirs (stage 4, when chosen).

Usage: python -m ttsrl.bin.train_vocoder --config conf/vocoder/small.yaml \\
           --train_data data/train --valid_data data/dev --exp_dir exp/base/vocoder
Resumes from exp_dir/checkpoints; writes exp_dir/model.pt and exp_dir/metrics.json
(dev_mel_l1, and dev_mel_l1_griffin_lim for reference).
"""
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.vocoder import VocoderTask


def get_parser():
    return _get_parser(VocoderTask)


def main(argv=None):
    run_task(VocoderTask, argv)


if __name__ == "__main__":
    main()
