"""Finite scalar quantization (FSQ; Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple", 2023).

Each of the ``d = len(levels)`` dimensions of a vector is bounded to ``levels[i]`` values
and rounded; the codebook is the grid of all combinations (``prod(levels)`` codes), so
there is no codebook to learn, no commitment loss and no code collapse. Rounding passes
gradients straight through (``z + (round(z) - z).detach()``, Sec. 3).

Bounding (Sec. 3, the ``bound`` function of the paper's code): ``tanh`` squashes a
dimension to ``levels[i]`` integer values centred on 0; an even number of levels is
shifted by a half so that rounding gives exactly ``levels[i]`` values. Codes are the
rounded values divided by ``levels[i] // 2``, so they lie in ``[-1, 1]``.

Indices: a code's digits ``c_i + levels[i] // 2`` in ``[0, levels[i])`` are read in a
mixed radix with the first dimension the least significant digit.

Usage::

    from ttsrl.models.quantizer import FSQ

    fsq = FSQ([8, 5, 5, 5])                 # 1000 codes, 4 dimensions
    codes, indices = fsq(z)                 # z (B, T, 4) -> codes (B, T, 4), indices (B, T) int64
    fsq.indices_to_codes(indices)           # == codes
    fsq.codes_to_indices(codes)             # == indices
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FSQ", "round_ste"]


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """``round(z)`` forward, identity backward (straight-through estimator)."""
    return z + (torch.round(z) - z).detach()


class FSQ(nn.Module):
    """Finite scalar quantizer over the last dimension; ``levels`` >= 2 each."""

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or any(v < 2 for v in levels):
            raise ValueError(f"FSQ: levels must be integers >= 2, got {levels}")
        self.levels = levels
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)
        lv = torch.tensor(levels, dtype=torch.float32)
        half_l = (lv - 1) * (1 + eps) / 2  # a little wider than needed: the extreme values are reachable
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]], dtype=torch.int64), dim=0)
        # constants of the configuration, rebuilt from `levels`: not part of the state dict
        self.register_buffer("_half_l", half_l, persistent=False)
        self.register_buffer("_offset", offset, persistent=False)
        self.register_buffer("_shift", torch.atanh(offset / half_l), persistent=False)
        self.register_buffer("_half_width", torch.div(lv, 2, rounding_mode="floor"), persistent=False)
        self.register_buffer("_basis", basis, persistent=False)
        self.register_buffer("_levels", lv.long(), persistent=False)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash ``z (..., d)`` so that rounding gives ``levels[i]`` integer values per dimension."""
        return torch.tanh(z + self._shift) * self._half_l - self._offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Quantized codes in ``[-1, 1]`` (``(..., d)``), with straight-through gradients."""
        return round_ste(self.bound(z)) / self._half_width

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """``(..., d)`` codes -> ``(...,)`` int64 indices in ``[0, codebook_size)``."""
        if codes.shape[-1] != self.dim:
            raise ValueError(f"FSQ: codes have {codes.shape[-1]} dimensions, expected {self.dim}")
        digits = torch.round(codes * self._half_width + self._half_width).long()  # (..., d)
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """``(...,)`` integer indices -> ``(..., d)`` float codes (the inverse of :meth:`codes_to_indices`)."""
        indices = indices.long()
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"FSQ: index out of range [0, {self.codebook_size}): min {int(indices.min())}, max {int(indices.max())}"
            )
        digits = torch.div(indices[..., None], self._basis, rounding_mode="floor") % self._levels  # (..., d)
        return (digits.float() - self._half_width) / self._half_width

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z (..., d)`` -> ``(codes (..., d), indices (...,))``."""
        codes = self.quantize(z)
        return codes, self.codes_to_indices(codes.detach())

    def extra_repr(self) -> str:
        return f"levels={self.levels}, codebook_size={self.codebook_size}"
