#!/usr/bin/env python3
"""Align a trained codec LM to preference pairs or a reward model (stage 7).

Usage: python -m ttsrl.bin.train_align --config conf/align/dpo.yaml --method dpo \\
           --init_lm exp/base/lm/model.pt --pairs exp/base/pairs/train/pairs.jsonl --token_dir dump/tokens/train \\
           [--valid_pairs exp/base/pairs/dev/pairs.jsonl --valid_token_dir dump/tokens/dev] --exp_dir exp/dpo/lm
       python -m ttsrl.bin.train_align --config conf/align/diffro.yaml --method diffro --init_lm exp/base/lm/model.pt \\
           --token_dir dump/tokens/train --reward_model exp/reward [--target_emotion happy] --exp_dir exp/diffro/lm
       python -m ttsrl.bin.train_align --config conf/align/grpo.yaml --method grpo --init_lm exp/base/lm/model.pt \\
           --token_dir dump/tokens/train_align --valid_token_dir dump/tokens/dev --reward_model exp/reward \\
           [--reward audio --data_dir data/train_align --valid_data_dir data/dev --tokenizer_dir exp/tokenizer \\
            --flow exp/base/flow/model.pt] --exp_dir exp/grpo/lm
Methods: dpo | speechalign (preference loss), raft | bon (SFT on chosen), coh (Chain-of-Hindsight tags),
diffro (Gumbel-Softmax reward optimization), grpo (online RL: G samples per text from the current policy,
group-normalized rewards, clipped ratio, k3 KL; ttsrl.align.grpo); see ttsrl.align.trainer. --lm_prompt false: the LM reads the
text alone, not the token dirs' zero-shot prompts. Resumes from exp_dir/checkpoints;
writes exp_dir/model.pt (loadable by ttsrl.models.codec_lm.load_codec_lm; a coh model samples with --tag good),
exp_dir/ref_logps.pt (the reference's log-probs, --ref_mode cache) and exp_dir/metrics.json
(train_seconds, val_* of the best model, kl to the reference).
"""
from ttsrl.tasks.align import AlignTask
from ttsrl.tasks.base import get_parser as _get_parser
from ttsrl.tasks.base import run_task


def get_parser():
    return _get_parser(AlignTask)


def main(argv=None):
    return run_task(AlignTask, argv)


if __name__ == "__main__":
    main()
