"""Loss functions: pure functions of model outputs, each naming its paper and equation."""
from ttsrl.losses.diffro import (
    DiffROOutput,
    diffro_loss,
    gumbel_softmax_st,
    masked_token_mean,
    reward_positions,
    token_kl,
)
from ttsrl.losses.grpo import GRPOOutput, generated_mask, group_advantages, grpo_loss, k3_kl, keep_groups
from ttsrl.losses.preference import LOSS_TYPES, preference_loss, sequence_logprobs, sft_loss

__all__ = [
    "LOSS_TYPES",
    "DiffROOutput",
    "GRPOOutput",
    "diffro_loss",
    "generated_mask",
    "group_advantages",
    "grpo_loss",
    "gumbel_softmax_st",
    "k3_kl",
    "keep_groups",
    "masked_token_mean",
    "preference_loss",
    "reward_positions",
    "sequence_logprobs",
    "sft_loss",
    "token_kl",
]
