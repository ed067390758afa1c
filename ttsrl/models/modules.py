"""Building blocks shared by ttsrl's non-autoregressive models (tokenizer, flow, reward, CTC judge).

Every block takes a padded batch ``x (B, T, D)`` with a validity mask ``mask (B, T)``
(True = a real frame) and keeps padded positions at zero, so that a sequence gives the
same output alone and batched with longer ones (tested): convolutions see zeros past
an utterance's end whether it is padded or not, attention never looks at padded keys.

* :func:`lengths_to_mask`         ``(B,)`` lengths -> ``(B, T)`` bool mask
* :func:`rope_tables`, :func:`apply_rope`  rotary positions (Su et al. 2021) of queries and keys
* :class:`MultiHeadSelfAttention` attention under a mask (bidirectional over the valid frames here,
                                  causal with a KV cache in the codec LM)
* :class:`EncoderLayer`           pre-LN transformer layer, or a conformer layer (Gulati et al.
                                  2020: macaron feed-forward, attention, convolution module)
                                  when ``conv_kernel > 0``
* :class:`Encoder`                a stack of encoder layers with a final LayerNorm; absolute
                                  (sinusoidal), rotary or no positions
* :class:`Conv1dSubsampling`      stride-2 convolutions: ``T -> ceil(T / factor)`` (factor 2**k)
* :class:`LinearUpsample`         ``T -> factor * T`` by a projection to ``factor`` frames

Usage::

    from ttsrl.models.modules import Conv1dSubsampling, Encoder, lengths_to_mask

    sub = Conv1dSubsampling(80, 256, factor=4)
    enc = Encoder(d_model=256, n_layers=4, n_heads=4, d_ff=1024, conv_kernel=15)
    h, h_lens = sub(mel, mel_lens)        # (B, T, 80) -> (B, ceil(T/4), 256), (B,)
    h = enc(h, h_lens)                    # (B, T', 256), zero at padded frames
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Conv1dSubsampling",
    "ConvModule",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "LinearUpsample",
    "MultiHeadSelfAttention",
    "apply_rope",
    "lengths_to_mask",
    "rope_tables",
    "sinusoidal_positions",
]


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, max_len)`` bool, True at positions ``< length``."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def rope_tables(coords: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``(B, 1, T, head_dim / 2)`` of the rotary angles at real-valued positions ``coords (B, T)``.

    RoFormer (Su et al. 2021, eq. 34): dimension pair ``i`` turns by ``coord * base ** (-2i / head_dim)``.
    """
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=coords.device, dtype=torch.float32) / head_dim)
    angles = coords.float()[..., None] * inv_freq
    return angles.cos()[:, None], angles.sin()[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates the two halves of ``x (B, H, T, Dh)`` as (real, imaginary) pairs by the angles of :func:`rope_tables`."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention under a boolean attention mask, with optional rotary positions and KV cache.

    The same class serves the bidirectional encoders (the mask hides padded keys) and the
    causal codec LM (the mask is causal; the cache makes decoding incremental).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout  # on the attention weights, in training

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache=None, layer: int = 0) -> torch.Tensor:
        """``x (B, T, D)`` -> ``(B, T, D)``.

        ``attn_mask``: bool, broadcastable to ``(B, H, T, S)``, True where a query may attend a key.
        ``rope``: ``(cos, sin)`` of :func:`rope_tables` at these columns' positions. ``cache``: keys
        and values of earlier columns (``k``, ``v`` of shape ``(layers, B, H, max_len, Dh)`` and
        ``length``, e.g. :class:`ttsrl.models.codec_lm.KVCache`): this call's keys (rotated) and
        values are written after them at index ``layer`` and attended with them.
        """
        B, T, D = x.shape
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in self.qkv(x).split(D, dim=2))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            start = cache.length
            cache.k[layer, :, :, start : start + T] = k
            cache.v[layer, :, :, start : start + T] = v
            k = cache.k[layer, :, :, : start + T]
            v = cache.v[layer, :, :, : start + T]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, d_ff), nn.SiLU(), nn.Linear(d_ff, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvModule(nn.Module):
    """Conformer convolution module: pointwise + GLU, depthwise conv, norm, SiLU, pointwise.

    LayerNorm replaces the paper's BatchNorm so that an utterance's output never depends
    on the rest of its batch (nor on running statistics).
    """

    def __init__(self, d_model: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvModule: kernel_size must be odd, got {kernel_size}")
        self.pw1 = nn.Linear(d_model, 2 * d_model)
        self.dw = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pw2 = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pw1(x), dim=-1)  # (B, T, D)
        x = x.masked_fill(~mask[..., None], 0.0)  # padded frames read as zeros, as past the end
        x = self.dw(x.transpose(1, 2)).transpose(1, 2)
        return self.pw2(F.silu(self.norm(x)))


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer (``conv_kernel == 0``) or conformer layer (``conv_kernel > 0``).

    ``dropout`` applies to the output of every residual branch (not to attention weights
    nor inside the feed-forward: on a CPU each dropout mask costs as much as a small matmul).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, conv_kernel: int = 0, dropout: float = 0.1):
        super().__init__()
        self.conformer = conv_kernel > 0
        self.norm_attn = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, 0.0)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, d_ff)
        self.drop = nn.Dropout(dropout)
        if self.conformer:
            self.norm_ff0 = nn.LayerNorm(d_model)
            self.ff0 = FeedForward(d_model, d_ff)
            self.norm_conv = nn.LayerNorm(d_model)
            self.conv = ConvModule(d_model, conv_kernel)
            self.norm_out = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> torch.Tensor:
        """``x (B, T, D)``, ``mask (B, T)`` (True = a real frame), ``rope``: rotary tables of the positions."""
        if self.conformer:
            x = x + 0.5 * self.drop(self.ff0(self.norm_ff0(x)))
        x = x + self.drop(self.attn(self.norm_attn(x), mask[:, None, None, :], rope))
        if self.conformer:
            x = x + self.drop(self.conv(self.norm_conv(x), mask))
            x = x + 0.5 * self.drop(self.ff(self.norm_ff(x)))
            return self.norm_out(x)
        return x + self.drop(self.ff(self.norm_ff(x)))


def sinusoidal_positions(T: int, d_model: int, device: torch.device | None = None) -> torch.Tensor:
    """Absolute sinusoidal position encodings ``(T, d_model)`` (Vaswani et al. 2017, Sec. 3.5)."""
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    inv = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(T, d_model, device=device)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv[: d_model // 2])
    return pe


class Encoder(nn.Module):
    """``n_layers`` :class:`EncoderLayer` and a final LayerNorm; padded frames are zero on output.

    ``position``: ``"abs"`` scales the input by ``sqrt(d_model)`` and adds sinusoidal
    encodings (one addition: the cheap choice on a CPU, enough with conformer
    convolutions; without the scaling the positions swamp a small input at init and CTC
    training sits longer on its plateau), ``"rope"`` rotates queries and keys in every
    layer, ``"none"`` adds nothing.
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        conv_kernel: int = 0,
        dropout: float = 0.1,
        position: str = "abs",
    ):
        super().__init__()
        if position not in ("abs", "rope", "none"):
            raise ValueError(f"Encoder: position must be abs, rope or none, got {position!r}")
        self.position = position
        self.head_dim = d_model // n_heads
        if position == "rope" and self.head_dim % 2:
            raise ValueError(f"Encoder: position 'rope' needs an even head size, got {self.head_dim}")
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, conv_kernel, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)``, ``lengths (B,)`` (each >= 1) -> ``(B, T, D)``."""
        mask = lengths_to_mask(lengths, x.shape[1])
        rope = None
        if self.position == "abs":  # scaled as in ESPnet: the input, not the positions, dominates at init
            x = x * math.sqrt(x.shape[2]) + sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype)
        elif self.position == "rope":
            rope = rope_tables(torch.arange(x.shape[1], device=x.device)[None], self.head_dim)
        for layer in self.layers:
            x = layer(x, mask, rope)
        return self.norm(x).masked_fill(~mask[..., None], 0.0)


class Conv1dSubsampling(nn.Module):
    """``(B, T, in_dim) -> (B, ceil(T / factor), out_dim)`` with ``log2(factor)`` stride-2 convolutions.

    Each convolution (kernel 3, padding 1, GELU) maps ``T`` frames to ``ceil(T / 2)``;
    frames past an utterance's length are zeroed before every convolution, so the
    output is independent of padding. ``factor == 1`` is a linear projection.
    """

    def __init__(self, in_dim: int, out_dim: int, factor: int = 4, kernel_size: int = 3, dropout: float = 0.0):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"Conv1dSubsampling: factor must be a power of 2, got {factor}")
        if kernel_size % 2 == 0:
            raise ValueError(f"Conv1dSubsampling: kernel_size must be odd, got {kernel_size}")
        self.factor = factor
        n = int(math.log2(factor))
        self.convs = nn.ModuleList(
            nn.Conv1d(in_dim if i == 0 else out_dim, out_dim, kernel_size, stride=2, padding=kernel_size // 2)
            for i in range(n)
        )
        self.out = nn.Linear(out_dim if n else in_dim, out_dim)
        self.drop = nn.Dropout(dropout)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in self.convs:
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.masked_fill(~lengths_to_mask(lengths, x.shape[1])[..., None], 0.0).transpose(1, 2)  # (B, D, T)
        for conv in self.convs:
            x = F.gelu(conv(x))
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
            x = x.masked_fill(~lengths_to_mask(lengths, x.shape[2])[:, None, :], 0.0)
        x = self.drop(self.out(x.transpose(1, 2)))  # (B, T', out_dim)
        return x.masked_fill(~lengths_to_mask(lengths, x.shape[1])[..., None], 0.0), lengths


class LinearUpsample(nn.Module):
    """``(B, T, d_in) -> (B, factor * T, d_out)``: each frame is projected to ``factor`` frames."""

    def __init__(self, d_in: int, d_out: int, factor: int):
        super().__init__()
        self.factor = factor
        self.proj = nn.Linear(d_in, factor * d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return self.proj(x).reshape(B, T * self.factor, -1)
