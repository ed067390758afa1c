"""SpecAugment (Park et al. 2019, sec. 2): random frequency bands and time spans of normalized
features are set to 0, the mean after global mean/variance normalization. Used in training mode
by the CTC judge (:mod:`ttsrl.models.asr`) and the speech tokenizer's encoder input."""
from __future__ import annotations

import torch


def spec_augment(x: torch.Tensor, lens: torch.Tensor, freq_masks: int, freq_width: int,
                 time_masks: int, time_width: int | torch.Tensor) -> torch.Tensor:
    """Mask ``x (B, T, F)``: ``freq_masks`` bands of up to ``freq_width`` bins and ``time_masks``
    spans of up to ``time_width`` frames (an int, or a ``(B,)`` tensor of per-utterance maxima)
    inside each utterance's ``lens`` frames. Widths and starts are uniform draws."""
    B, T, Fdim = x.shape
    lens = lens.to(x.device)
    mask = torch.zeros(B, T, Fdim, dtype=torch.bool, device=x.device)
    t_max = torch.as_tensor(time_width, device=x.device).expand(B)
    for n, max_w, limit, axis in ((freq_masks, torch.full((B,), freq_width, device=x.device),
                                   torch.full((B,), Fdim, device=x.device), 2), (time_masks, t_max, lens, 1)):
        pos = torch.arange(Fdim if axis == 2 else T, device=x.device)
        for _ in range(n):
            w = (torch.rand(B, device=x.device) * (max_w + 1)).long().clamp(max=limit - 1)  # (B,)
            start = (torch.rand(B, device=x.device) * (limit - w + 1)).long()
            span = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + w)[:, None])
            mask |= span[:, None, :] if axis == 2 else span[:, :, None]
    return x.masked_fill(mask, 0.0)
