#!/usr/bin/env python3
"""Train the speaker encoder on log-mel (stage 4 with --flow_student dmo): DMO's speaker-verification loss.

Usage: python -m ttsrl.bin.train_speaker_encoder --config conf/speaker/small.yaml \\
           --train_data_dir data/train --train_feats dump/feats/train/feats.scp \\
           --valid_data_dir data/dev --valid_feats dump/feats/dev/feats.scp --exp_dir exp/base/speaker
Resumes from exp_dir/checkpoints; writes exp_dir/model.pt (weights, mel stats, config) and
exp_dir/metrics.json (dev_eer in percent over every pair of dev utterances).
"""
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.speaker import SpeakerTask


def get_parser():
    return _get_parser(SpeakerTask)


def main(argv=None):
    return run_task(SpeakerTask, argv)


if __name__ == "__main__":
    main()
