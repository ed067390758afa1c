"""Preference losses over sequence log-probabilities (DPO and its variants), and the SFT term.

Every loss reads the policy's and the reference's log-probabilities of a chosen (preferred,
``y_w``) and a rejected (``y_l``) sequence and works on the difference of log-ratios

    h = [log pi(y_w) - log pi_ref(y_w)] - [log pi(y_l) - log pi_ref(y_l)]

=========  ==================================================================================
sigmoid    DPO, Rafailov et al. 2023, Eq. 7:          -log sigma(beta h)
cdpo       conservative DPO (Mitchell 2023, "A note on DPO with noisy preferences"): labels
           flipped with probability eps:  -(1 - eps) log sigma(beta h) - eps log sigma(-beta h)
robust     robust DPO (Chowdhury et al. 2024, "Provably robust DPO", the de-biased loss):
           [-(1 - eps) log sigma(beta h) + eps log sigma(-beta h)] / (1 - 2 eps)
ipo        IPO, Azar et al. 2023, Eq. 17:              (h - 1 / (2 beta))^2, on length-normalized
           log-probs (see below)
hinge      SLiC-HF (Zhao et al. 2023) calibration hinge on the log-ratios: max(0, 1 - beta h)
=========  ==================================================================================

The implicit rewards ``beta (log pi(y) - log pi_ref(y))`` of both sequences are returned
(detached) for the reward accuracy (chosen reward > rejected reward).

Sums or means: ``sequence_logprobs(..., average=True)`` divides each sequence's log-prob by its
number of predicted tokens. IPO needs the mean: its target margin ``1 / (2 beta)`` is a
per-token quantity, and TRL (``DPOTrainer``, ``loss_type="ipo"``) averages the log-ratio over
the completion tokens before ``(h - 1/(2 beta))^2``. On sequences of hundreds of speech tokens a
summed ``h`` is hundreds of times larger and the squared loss a different objective, so
:func:`resolve_average` makes ``ipo`` length-normalized by default and refuses it with sums.

Usage::

    logp, mask = model.token_logprobs(text, text_lens, speech, speech_lens, prompt_lens)   # (B, T)
    seq = sequence_logprobs(logp, mask)                                                     # (B,)
    loss, r_w, r_l = preference_loss(seq[:B], seq[B:], ref[:B], ref[B:], beta=0.1)
    loss.mean().backward()
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LENGTH_NORMALIZED", "LOSS_TYPES", "check_preference_options", "preference_loss", "resolve_average",
           "sequence_logprobs", "sft_loss"]

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "cdpo", "robust")
#: Loss types defined on length-normalized (token-averaged) log-probs: summed ones are refused.
LENGTH_NORMALIZED = ("ipo",)


def sequence_logprobs(token_logp: torch.Tensor, mask: torch.Tensor, average: bool = False) -> torch.Tensor:
    """Sum (or mean) of per-token log-probs over the positions where ``mask`` is True.

    token_logp (B, T), mask (B, T) bool: the predicted positions (speech targets and <eos>;
    never text, prompt or padding). Positions outside the mask contribute nothing whatever
    they hold; ``average`` divides by the number of masked positions of each row (the
    length-normalized log-prob, e.g. SimPO / CosyVoice's averaged DPO). -> (B,)
    """
    if token_logp.shape != mask.shape:
        raise ValueError(f"token_logp {tuple(token_logp.shape)} and mask {tuple(mask.shape)} differ in shape")
    mask = mask.bool()
    total = token_logp.masked_fill(~mask, 0.0).sum(-1)  # masked_fill, not *: -inf or nan outside stays out
    if average:
        return total / mask.sum(-1).clamp(min=1).to(total.dtype)
    return total


def resolve_average(loss_type: str, average: bool | None = None) -> bool:
    """Whether sequence log-probs are token-averaged: ``average`` when given, else True for the
    :data:`LENGTH_NORMALIZED` types (IPO) and False for the others (Rafailov et al.'s sums).

    Raises ValueError for IPO with ``average=False`` (see the module docstring).
    """
    if average is None:
        return loss_type in LENGTH_NORMALIZED
    if loss_type in LENGTH_NORMALIZED and not average:
        raise ValueError(
            f"loss_type {loss_type} needs length-normalized log-probs (average: true, or leave average unset): "
            "its margin 1/(2 beta) is per token, as in TRL; summed log-probs are refused"
        )
    return bool(average)


def check_preference_options(beta: float, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
                             average: bool | None = None) -> None:  # fmt: skip
    """The ValueError :func:`preference_loss` raises for these options, raised before any work;
    ``average`` (the sequence log-probs' reduction, None: the loss type's default) is checked
    by :func:`resolve_average`."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; choose from {', '.join(LOSS_TYPES)}")
    eps = float(label_smoothing)
    if loss_type in ("cdpo", "robust"):
        if not 0.0 <= eps < 0.5:
            raise ValueError(f"{loss_type}: label_smoothing must be in [0, 0.5), got {eps}")
    elif eps != 0.0:
        raise ValueError(f"label_smoothing={eps} applies to loss_type cdpo or robust, not {loss_type}")
    resolve_average(loss_type, average)


def preference_loss(
    pol_chosen: torch.Tensor,
    pol_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair preference loss (B,) and the implicit rewards of chosen and rejected (B,) each.

    pol_* are the policy's sequence log-probs (B,), ref_* the reference's (no gradient is
    taken through them). ``label_smoothing`` is the assumed probability eps that a pair's
    label is flipped (cdpo, robust; must be 0 for the other types). See the module docstring
    for the equations.
    """
    check_preference_options(beta, loss_type, label_smoothing)
    eps = float(label_smoothing)
    ref_chosen, ref_rejected = ref_chosen.detach(), ref_rejected.detach()
    chosen_ratio = pol_chosen - ref_chosen  # log pi(y_w) / pi_ref(y_w)
    rejected_ratio = pol_rejected - ref_rejected
    h = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":  # Rafailov et al. 2023, Eq. 7
        loss = -F.logsigmoid(beta * h)
    elif loss_type == "cdpo":  # Mitchell 2023: the expected DPO loss under label noise eps
        loss = -(1.0 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    elif loss_type == "robust":  # Chowdhury et al. 2024: unbiased for the clean loss under flips
        loss = (-(1.0 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1.0 - 2.0 * eps)
    elif loss_type == "ipo":  # Azar et al. 2023, Eq. 17 (tau = beta); h from token-averaged log-probs
        loss = (h - 1.0 / (2.0 * beta)) ** 2
    else:  # hinge, SLiC-HF
        loss = torch.relu(1.0 - beta * h)
    return loss, (beta * chosen_ratio).detach(), (beta * rejected_ratio).detach()


def sft_loss(token_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-averaged negative log-likelihood over ``mask`` (scalar): the LM cross-entropy
    restricted to predicted positions, used by RAFT / best-of-N / CoH and as DPO's SFT term."""
    n = mask.sum().clamp(min=1)
    return -token_logp.masked_fill(~mask.bool(), 0.0).sum() / n
