"""SpecAugment (Park et al. 2019, sec. 2): random frequency bands and time spans of normalized
features are set to 0, the mean after global mean/variance normalization. Used in training mode
by the CTC judge (:mod:`ttsrl.models.asr`) and the speech tokenizer's encoder input."""
from __future__ import annotations

import torch


def _spans(n: int, max_width: torch.Tensor, limit: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` union of ``n`` random spans per row, each up to ``max_width`` long inside ``limit``."""
    pos = torch.arange(size, device=limit.device)
    mask = torch.zeros(limit.shape[0], size, dtype=torch.bool, device=limit.device)
    for _ in range(n):
        w = (torch.rand(limit.shape, device=limit.device) * (max_width + 1)).long().clamp(max=limit - 1)
        start = (torch.rand(limit.shape, device=limit.device) * (limit - w + 1)).long()
        mask |= (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + w)[:, None])
    return mask


def spec_augment(x: torch.Tensor, lens: torch.Tensor, freq_masks: int, freq_width: int,
                 time_masks: int, time_width: int | torch.Tensor) -> torch.Tensor:
    """Mask ``x (B, T, F)``: ``freq_masks`` bands of up to ``freq_width`` bins and ``time_masks``
    spans of up to ``time_width`` frames (an int, or a ``(B,)`` tensor of per-utterance maxima)
    inside each utterance's ``lens`` frames. Widths and starts are uniform draws."""
    B, T, Fdim = x.shape
    lens = lens.to(x.device)
    bands = _spans(freq_masks, torch.tensor(freq_width, device=x.device), torch.full_like(lens, Fdim), Fdim)
    frames = _spans(time_masks, torch.as_tensor(time_width, device=x.device), lens, T)
    return x.masked_fill(bands[:, None, :] | frames[:, :, None], 0.0)
