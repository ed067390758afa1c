"""Group Relative Policy Optimization (GRPO) for the codec LM: advantages, the k3 KL and the clipped objective.

For each (prompt, text) the policy samples a group of G candidates ``o_1 .. o_G`` and each gets a
reward ``r_i``. There is no value model: the advantage of every token of ``o_i`` is its group's
normalized reward (DeepSeekMath, Shao et al. 2024, Sec. 4.1.2, outcome supervision)::

    A_i = (r_i - mean(r)) / (std(r) + eps)               GRPO (std: unbiased, as TRL's GRPOTrainer)
    A_i =  r_i - mean(r)                                 Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like
                                                         Training", Sec. 3.1: no std normalization)

The per-token objective is PPO's clipped surrogate with the ratio to the policy that sampled
(``old``), minus a KL penalty to the frozen reference (Shao et al. 2024, Eq. 3)::

    rho_t = pi(o_t | o_<t) / pi_old(o_t | o_<t)
    l_t   = min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A) - beta * KL3_t
    KL3_t = pi_ref / pi - log(pi_ref / pi) - 1          (Eq. 4; Schulman 2020, "Approximating KL
                                                         divergence", the k3 estimator: unbiased, >= 0,
                                                         and 0 where pi == pi_ref)

    GRPO:     L = - 1/|G| sum_i 1/|o_i| sum_t l_t       (each sequence's token mean, then the rows' mean)
    Dr. GRPO: L = - 1/(|G| L_max) sum_i sum_t l_t        (one constant: L_max, the generation budget)

Only the generated speech positions count (``mask``): the predicted speech tokens and the
``<eos>`` the policy chose; never the text, the prompt's speech (given, not generated), padding,
nor the ``<eos>`` forced at the length bound (:func:`generated_mask`). Rows of groups that are
left out (:func:`keep_groups`: all rewards equal, or a CER proxy above a threshold, as NeMo's
MagpieTTS GRPO does) are dropped by ``row_mask``.

Usage::

    adv = group_advantages(rewards.view(B, G)).flatten()                      # (B * G,)
    keep = keep_groups(rewards.view(B, G), cer.view(B, G)).repeat_interleave(G)
    out = grpo_loss(logp, old_logp, ref_logp, adv, mask, clip_eps=0.2, kl_weight=0.04, row_mask=keep)
    out.loss.backward()
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["GRPOOutput", "generated_mask", "group_advantages", "grpo_loss", "k3_kl", "keep_groups"]


def group_advantages(rewards: torch.Tensor, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """Group-normalized advantages of ``rewards`` (N groups, G candidates) -> (N, G).

    ``scale``: divide by the group's standard deviation (GRPO); False: the reward minus the
    group mean only (Dr. GRPO). A group of equal rewards gets advantages 0 either way.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (groups, G) with G >= 2, got {tuple(rewards.shape)}")
    r = rewards.float()
    adv = r - r.mean(1, keepdim=True)
    if scale:
        adv = adv / (r.std(1, keepdim=True) + eps)
    return adv


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The k3 estimate of KL(pi || pi_ref) per sampled token: ``exp(d) - d - 1`` with
    ``d = log pi_ref - log pi`` (Shao et al. 2024, Eq. 4). Same shape; 0 where they are equal."""
    d = ref_logp.detach().float() - logp.float()
    return torch.exp(d) - d - 1.0


def keep_groups(rewards: torch.Tensor, cer: torch.Tensor | None = None, skip_equal: bool = True,
                max_best_cer: float = 1.0, max_worst_cer: float = 1.0, tol: float = 1e-6) -> torch.Tensor:
    """Which groups (N,) bool enter the loss.

    A group is left out when ``skip_equal`` and its rewards are all equal (within ``tol``: no
    signal, only the KL would act), when the lowest CER proxy of its candidates is above
    ``max_best_cer`` (nothing in the group says the text), or when its highest CER is above
    ``max_worst_cer`` (NeMo MagpieTTS's best/worst_cer_threshold). ``cer`` (N, G) is clamped to
    [0, 1], so thresholds of 1 never drop a group.
    """
    keep = torch.ones(rewards.shape[0], dtype=torch.bool, device=rewards.device)
    if skip_equal:
        r = rewards.float()
        keep &= (r.max(1).values - r.min(1).values) > tol
    if cer is not None:
        c = cer.float().clamp(0.0, 1.0).to(rewards.device)
        keep &= c.min(1).values <= max_best_cer
        keep &= c.max(1).values <= max_worst_cer
    return keep


def generated_mask(lm_mask: torch.Tensor, speech_lens: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
    """The positions the policy generated, (R, T) bool, from the LM's mask of predicted positions.

    ``lm_mask`` (``LMOutput.mask``) already excludes the text, the prompt's speech and padding;
    column ``speech_lens[r]`` predicts ``<eos>``, which counts only when the policy chose it
    (``finished``), not when the sampler forced it at the length bound.
    """
    cols = torch.arange(lm_mask.shape[1], device=lm_mask.device)[None, :]
    forced_eos = (cols == speech_lens.to(lm_mask.device)[:, None]) & ~finished.to(lm_mask.device).bool()[:, None]
    return lm_mask.bool() & ~forced_eos


@dataclass
class GRPOOutput:
    loss: torch.Tensor  # scalar, to minimize
    policy_loss: torch.Tensor  # scalar: the clipped-surrogate part (detached)
    kl: torch.Tensor  # scalar: mean k3 KL over the counted tokens (detached)
    clip_frac: torch.Tensor  # scalar: share of counted tokens whose clipped term is the one taken
    ratio: torch.Tensor  # scalar: mean policy ratio over the counted tokens
    tokens: torch.Tensor  # scalar: counted tokens


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    kl_weight: float = 0.0,
    dr_grpo: bool = False,
    max_len: int | None = None,
    row_mask: torch.Tensor | None = None,
) -> GRPOOutput:
    """The GRPO loss (see the module docstring) of R sampled sequences.

    logp (R, T): the policy's log-probs of the sampled tokens (with gradient); old_logp (R, T):
    those of the policy that sampled them (``logp.detach()`` on the first update of a batch);
    ref_logp (R, T) the reference's (None only with ``kl_weight == 0``); advantages (R,); mask
    (R, T) the generated positions; row_mask (R,) the rows that count (default all).
    ``dr_grpo`` divides the token sum by ``rows * max_len``. With no counted row the loss is 0
    (still connected to ``logp``, so that every DDP rank runs its backward).
    """
    if logp.shape != mask.shape or old_logp.shape != mask.shape:
        raise ValueError(f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask {tuple(mask.shape)} "
                         "must have one shape")
    if clip_eps <= 0:
        raise ValueError(f"clip_eps must be positive, got {clip_eps}")
    if kl_weight and ref_logp is None:
        raise ValueError("kl_weight > 0 needs the reference's log-probs")
    if dr_grpo and not max_len:
        raise ValueError("dr_grpo needs max_len (the generation budget)")
    R = logp.shape[0]
    rows = torch.ones(R, dtype=torch.bool, device=logp.device) if row_mask is None else row_mask.bool().to(logp.device)
    m = mask.bool() & rows[:, None]
    mf = m.to(torch.float32)
    lp = logp.float()
    ratio = torch.exp(lp - old_logp.detach().float())
    adv = advantages.detach().float().to(logp.device)[:, None]
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    surrogate = torch.minimum(ratio * adv, clipped * adv)
    kl = k3_kl(lp, ref_logp) if ref_logp is not None else torch.zeros_like(lp)
    per_token = -surrogate + kl_weight * kl
    n_rows = rows.sum()
    if dr_grpo:
        denom = (n_rows * int(max_len)).clamp(min=1).to(torch.float32)
        loss = (per_token * mf).sum() / denom
        policy = (-surrogate * mf).sum() / denom
    else:
        per_row = (per_token * mf).sum(1) / mf.sum(1).clamp(min=1)
        loss = (per_row * rows).sum() / n_rows.clamp(min=1)
        policy = ((-surrogate * mf).sum(1) / mf.sum(1).clamp(min=1) * rows).sum() / n_rows.clamp(min=1)
    if not bool(rows.any()):
        loss = (lp * 0.0).sum()
    n_tok = mf.sum()
    took_clip = ((ratio < 1.0 - clip_eps) & (adv < 0)) | ((ratio > 1.0 + clip_eps) & (adv > 0))
    return GRPOOutput(
        loss=loss,
        policy_loss=policy.detach(),
        kl=((kl * mf).sum() / n_tok.clamp(min=1)).detach(),
        clip_frac=((took_clip & m).sum() / n_tok.clamp(min=1)).detach(),
        ratio=((ratio * mf).sum() / n_tok.clamp(min=1)).detach(),
        tokens=n_tok.detach(),
    )
