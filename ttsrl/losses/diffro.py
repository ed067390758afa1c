"""Differentiable reward optimization (DiffRO, CosyVoice 3) for the codec LM.

The reward model reads speech tokens; to push its gradient into the LM, each predicted
position's distribution is sampled with the straight-through Gumbel-Softmax (Jang et al.
2017, Eq. 1; Bengio et al. 2013 for the straight-through estimator): the forward value is
the one-hot of ``argmax(logits + g)``, ``g ~ Gumbel(0, 1)``, and the backward pass uses the
gradient of ``softmax((logits + g) / tau)``. The loss (DiffRO; a KL penalty to the
reference keeps the policy near the base model, as in RLHF)::

    L = - E_B[ R(y~_1 .. y~_m) ] + kl_weight * (1 / N) sum_{b, t in mask} KL(pi(.|y_<t) || pi_ref(.|y_<t))

where ``y~_t`` are the Gumbel one-hots at the teacher-forced positions of the target speech
(not the prompt, not <eos>, not padding) and N the number of masked positions.

Usage::

    out = policy(text, text_lens, speech, speech_lens, prompt_lens)          # out.logits (B, T, V + 1)
    with torch.no_grad():
        ref_logits = reference(text, text_lens, speech, speech_lens, prompt_lens).logits
    res = diffro_loss(out.logits, ref_logits, out.mask, reward_fn, tau=1.0, kl_weight=0.1)
    res.loss.backward()          # reward_fn(soft (B, K, V), lens (B,)) -> (B,), differentiable in soft
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["DiffROOutput", "diffro_loss", "gumbel_softmax_st", "masked_token_mean", "reward_positions", "token_kl"]


def gumbel_softmax_st(logits: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Straight-through Gumbel-Softmax over the last dimension.

    Forward: the one-hot of ``argmax((logits + g) / tau)``; backward: the gradient of
    ``softmax((logits + g) / tau)`` (the hard sample minus the detached soft one plus the soft
    one). ``generator`` makes the noise reproducible. Same shape as ``logits``.
    """
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    u = torch.empty_like(logits, dtype=torch.float32).exponential_(generator=generator)
    g = -u.clamp_min(torch.finfo(torch.float32).tiny).log()  # Gumbel(0, 1); clamp: exponential_ may return 0
    y_soft = ((logits.float() + g) / tau).softmax(-1)
    y_hard = F.one_hot(y_soft.argmax(-1), logits.shape[-1]).to(y_soft.dtype)
    return (y_hard - y_soft.detach() + y_soft).to(logits.dtype)


def token_kl(policy_logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """KL(pi || pi_ref) of the full next-token distributions at every position: (B, T, V) -> (B, T)."""
    logp = policy_logits.float().log_softmax(-1)
    logq = ref_logits.float().log_softmax(-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def masked_token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B, T) over the positions where ``mask`` is True (a scalar; 0 for an empty mask)."""
    mask = mask.bool()
    return values.masked_fill(~mask, 0.0).sum() / mask.sum().clamp(min=1)


def reward_positions(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices (B, K) and counts (B,) of the target speech tokens in an LM mask.

    ``mask`` (B, T) marks the predicted positions of each row, contiguous and ending with
    the one that predicts <eos> (``LMOutput.mask``): the speech tokens are those before it.
    Indices past a row's count are clamped to a valid column (mask them with the counts).
    """
    mask = mask.bool()
    B, T = mask.shape
    n_pred = mask.sum(1)
    first = mask.long().argmax(1)  # the first True (0 for an empty row)
    cols = torch.arange(T, device=mask.device)[None, :]
    contiguous = (mask == ((cols >= first[:, None]) & (cols < (first + n_pred)[:, None]))).all()
    if not bool(contiguous):
        raise ValueError("mask must be contiguous in every row (prompt, then targets, then <eos>, then padding)")
    counts = (n_pred - 1).clamp(min=0)
    K = max(int(counts.max()) if B else 0, 1)
    idx = (first[:, None] + torch.arange(K, device=mask.device)[None, :]).clamp(max=T - 1)
    return idx, counts


@dataclass
class DiffROOutput:
    loss: torch.Tensor  # scalar: -mean reward + kl_weight * kl
    reward: torch.Tensor  # (B,) reward of the Gumbel samples (differentiable)
    kl: torch.Tensor  # scalar: token-average KL(policy || reference) over the mask
    soft: torch.Tensor  # (B, K, V) the straight-through one-hots the reward model read
    lens: torch.Tensor  # (B,) their lengths


def diffro_loss(
    policy_logits: torch.Tensor,
    ref_logits: torch.Tensor | None,
    mask: torch.Tensor,
    reward_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    tau: float = 1.0,
    kl_weight: float = 0.0,
    generator: torch.Generator | None = None,
) -> DiffROOutput:
    """The DiffRO loss of a teacher-forced batch (see the module docstring).

    policy_logits, ref_logits (B, T, V + 1) over the speech codebook and <eos> (column V);
    mask (B, T) the predicted positions (``LMOutput.mask``); ``reward_fn(soft (B, K, V),
    lens (B,)) -> (B,)`` scores speech tokens given as one-hots (higher is better).

    The reward reads the target speech tokens only: the position that predicts <eos> and
    everything after it (padding) and before it (prompt) are dropped, and the Gumbel sample
    is drawn over the V speech columns (the <eos> column is left out, so that every one-hot
    is a real token; the teacher-forced sequence has no <eos> at these positions). The KL
    covers every masked position over all V + 1 columns. ``ref_logits`` may be None only
    with ``kl_weight == 0``.
    """
    V = policy_logits.shape[-1] - 1
    idx, lens = reward_positions(mask)  # (B, K), (B,)
    K = idx.shape[1]
    logits = policy_logits.gather(1, idx[..., None].expand(-1, -1, V + 1))[..., :V]  # (B, K, V)
    valid = torch.arange(K, device=mask.device)[None, :] < lens[:, None]
    soft = gumbel_softmax_st(logits, tau, generator) * valid[..., None].to(logits.dtype)
    reward = reward_fn(soft, lens)
    if ref_logits is None:
        if kl_weight:
            raise ValueError("kl_weight > 0 needs the reference's logits")
        kl = policy_logits.new_zeros(())
    else:
        kl = masked_token_mean(token_kl(policy_logits, ref_logits.detach()), mask)
    loss = -reward.float().mean() + kl_weight * kl
    return DiffROOutput(loss=loss, reward=reward, kl=kl, soft=soft, lens=lens)
