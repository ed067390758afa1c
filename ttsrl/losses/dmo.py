"""Distribution matching distillation of a flow-matching model (DMD2, as DMOSpeech uses it).

A few-step student ``G`` maps noise to mel. Its output ``x`` is noised to a random time ``t`` on
the flow's path, ``x_t = (1 - (1 - s) t) eps + t x`` (``s``: ``sigma_min``), and two velocity
models predict the clean sample from ``x_t``: the frozen teacher ("real" score, with guidance)
and a "fake" score model trained online on the student's own outputs. The student's
distribution moves toward the teacher's along the difference of the two predictions (DMD, Yin et
al. 2023, and DMD2, Yin et al. 2024: the gradient of KL(p_student || p_teacher) is ``s_fake - s_real``;
here in clean-sample form with DMD's per-utterance normalization, as DMOSpeech2's ``guidance_model.py``)::

    x1_hat(v) = (1 - s) x_t + (1 - (1 - s) t) v              the clean sample a velocity implies
    grad      = (x1_fake - x1_real) / mean_mask |x - x1_real|  normalized per utterance
    L_dmd     = 1/2 mean_mask (x - sg(x - grad))^2            so dL/dx = grad / N: x moves toward
                                                              x1_real and away from x1_fake

The fake model's own loss is the flow-matching loss on the detached student output
(:func:`ttsrl.models.flow.masked_mse` of its velocity and the path's target).

Usage::

    x1_real = predict_x1(x_t, v_real, t, sigma_min)
    x1_fake = predict_x1(x_t, v_fake, t, sigma_min)
    loss = dmd_loss(x, x1_real, x1_fake, mask)        # x (B, C, T) with grad; mask (B, T)
"""
from __future__ import annotations

import torch

from ttsrl.models.flow import predict_x1  # the path's inverse: x1 from (x_t, v, t)

__all__ = ["dmd_gradient", "dmd_loss", "predict_x1"]


def dmd_gradient(x: torch.Tensor, x1_real: torch.Tensor, x1_fake: torch.Tensor, mask: torch.Tensor,
                 eps: float = 1e-6) -> torch.Tensor:
    """The normalized DMD gradient ``(x1_fake - x1_real) / mean|x - x1_real|`` (B, C, T), zero outside
    ``mask`` (B, T); the mean is each utterance's over its masked frames and channels. No grad."""
    with torch.no_grad():
        m = mask.unsqueeze(1).to(x.dtype)
        norm = ((x - x1_real).abs() * m).sum((1, 2)) / (m.sum((1, 2)) * x.shape[1]).clamp(min=1)
        grad = (x1_fake - x1_real) * m / (norm.view(-1, 1, 1) + eps)
        return torch.nan_to_num(grad)


def dmd_loss(x: torch.Tensor, x1_real: torch.Tensor, x1_fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The DMD surrogate ``1/2 mean_mask (x - sg(x - grad))^2`` of the student output ``x`` (B, C, T)."""
    grad = dmd_gradient(x, x1_real, x1_fake, mask)
    m = mask.unsqueeze(1).to(x.dtype)
    target = (x - grad).detach()
    return 0.5 * (((x - target) ** 2) * m).sum() / (m.sum() * x.shape[1]).clamp(min=1)
