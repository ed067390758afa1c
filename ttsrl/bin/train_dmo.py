#!/usr/bin/env python3
"""Distil the flow model into a few-step student trained through CTC and speaker losses (DMO, stage 4).

Usage: python -m ttsrl.bin.train_dmo --config conf/dmo/small.yaml --teacher exp/base/flow \\
           --tokenizer_dir exp/tokenizer --speaker_encoder exp/base/speaker \\
           --train_dir dump/tokens/train --train_feats dump/feats/train/feats.scp --train_data_dir data/train \\
           --valid_dir dump/tokens/dev --valid_feats dump/feats/dev/feats.scp --valid_data_dir data/dev \\
           --exp_dir exp/base/flow_dmo
Resumes from exp_dir/checkpoints; writes exp_dir/student/model.pt (a flow model: synthesize it with
--flow_solver renoise --flow_n_steps <student_steps> --flow_cfg_scale 0) and exp_dir/metrics.json
(student vs teacher on dev: CER of the recognizer, speaker similarity, mel L1, speed-up).
"""
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task
from ttsrl.tasks.dmo import DMOTask


def get_parser():
    return _get_parser(DMOTask)


def main(argv=None):
    return run_task(DMOTask, argv)


if __name__ == "__main__":
    main()
