"""Speaker losses: the additive angular margin softmax of the speaker encoder, and DMO's
speaker-verification loss.

AAM-softmax (ArcFace, Deng et al. 2019, Eq. 3): with ``cos theta_j`` the cosine of a unit
embedding to speaker j's unit weight, ``y`` the true speaker, margin ``m`` and scale ``s``::

    L = -log( e^{s cos(theta_y + m)} / (e^{s cos(theta_y + m)} + sum_{j != y} e^{s cos theta_j}) )

Past ``theta_y > pi - m`` the angle plus margin would wrap around, so there the target logit is
``cos theta_y - m sin m`` (ArcFace's implementation, ``easy_margin=False``), which keeps the
logit decreasing in ``theta_y``.

Speaker-verification loss (DMOSpeech, Li et al. 2025, Sec. 3.3: the cosine distance between the
speaker embeddings of the generated speech and of the prompt)::

    L_sv = mean_i (1 - cos(e_i, e_ref_i))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["aam_softmax_loss", "speaker_cosine_loss"]


def aam_softmax_loss(cosines: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                     scale: float = 30.0) -> torch.Tensor:
    """Mean AAM-softmax loss of ``cosines`` (B, S) (embedding-to-speaker cosines) and ``labels`` (B,)."""
    if cosines.dim() != 2 or labels.shape != cosines.shape[:1]:
        raise ValueError(f"cosines (B, S) and labels (B,) expected, got {tuple(cosines.shape)} and {tuple(labels.shape)}")
    cos = cosines.clamp(-1 + 1e-7, 1 - 1e-7)
    target = cos.gather(1, labels[:, None])  # (B, 1)
    sin = (1 - target * target).sqrt()
    with_margin = target * math.cos(margin) - sin * math.sin(margin)  # cos(theta + m)
    wrapped = target <= math.cos(math.pi - margin)  # theta > pi - m
    with_margin = torch.where(wrapped, target - margin * math.sin(margin), with_margin)
    logits = cos.scatter(1, labels[:, None], with_margin) * scale
    return F.cross_entropy(logits, labels)


def speaker_cosine_loss(emb: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance ``1 - cos`` between rows of ``emb`` and ``ref`` (B, D)."""
    if emb.shape != ref.shape:
        raise ValueError(f"embeddings of one shape expected, got {tuple(emb.shape)} and {tuple(ref.shape)}")
    return (1 - F.cosine_similarity(emb, ref, dim=-1)).mean()
