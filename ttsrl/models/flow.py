"""Flow-matching acoustic model: speech tokens (+ prompt mel, + speaker embedding) -> log-mel.

Conditional flow matching (Lipman et al. 2023) on the optimal-transport path, conditioned
the way CosyVoice's flow model is:

- speech tokens (25 Hz) -> embedding -> a small transformer encoder -> repeated x4 to the
  mel frame rate -> a conv -> ``mu`` ``(B, n_mels, T)``;
- ``cond``: the prompt mel, i.e. the first frames of the target itself during training (a
  random prefix of 0 .. ``prompt_max_ratio`` of each utterance, excluded from the loss), the
  prompt utterance's mel prepended to the target at inference (its tokens prepended too);
- ``spk``: an optional global speaker vector, projected to ``n_mels`` and broadcast in time.

The estimator is a transformer over frames whose input is ``[x_t | mu | cond | spk]``;
every block is modulated by the flow time (sinusoidal embedding + MLP, adaLN). Mel is
normalized inside the model with global mean/std buffers (:class:`GlobalMVN`), so a
``model.pt`` is self-contained; inputs and outputs are natural-log mel as ``MelExtractor``.

OT path and target (Lipman et al. 2023, eq. 20-23; CosyVoice ``ConditionalCFM``)::

    x_t = (1 - (1 - sigma_min) t) x0 + t x1,     u_t = x1 - (1 - sigma_min) x0,    x0 ~ N(0, I)

Classifier-free guidance: ``mu``, ``cond`` and ``spk`` are all zeroed for an utterance with
probability ``cfg_dropout`` in training; at inference ``v = (1 + s) v_cond - s v_uncond``
(CosyVoice's ``inference_cfg_rate``; ``s = 0`` is no guidance). ODE from t = 0 (noise) to 1
with Euler (``n_steps`` estimator calls) or midpoint (``2 n_steps``), on a linear or cosine
(``t = 1 - cos(t pi / 2)``, finer steps near the noise) time grid; or ``renoise``, the few-step
sampler of a distilled student (``ttsrl.align.dmo``): predict the clean mel at ``t_k = k / n``, noise
it afresh to ``t_{k+1}``, and so on (DMD2's multi-step generator).

Usage::

    model = FlowMatching(FlowConfig(vocab_size=1000))
    out = model(tokens, token_lens, mel, mel_lens)     # tokens (B, L); mel (B, 80, T), T ~= 4 L
    out.loss.backward()
    mel, mel_lens = model.synthesize(tokens, token_lens, prompt_tokens, prompt_mel,
                                     prompt_token_lens=pl, n_steps=10, cfg_scale=0.7,
                                     generator=torch.Generator().manual_seed(0))
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ttsrl.feats.stats import GlobalMVN
from ttsrl.models.modules import lengths_to_mask
from ttsrl.utils.checkpoint import load_model


@dataclass
class FlowConfig:
    vocab_size: int = 1024  # speech tokenizer codebook size
    n_mels: int = 80
    token_frames: int = 4  # mel frames per speech token (100 Hz / 25 Hz)
    d_model: int = 256
    n_heads: int = 4
    encoder_layers: int = 3  # token encoder (token rate)
    estimator_layers: int = 6  # velocity estimator (frame rate)
    d_ff: int = 1024
    conv_kernel: int = 9  # depthwise conv in every estimator block (local context)
    dropout: float = 0.1
    spk_embed_dim: int = 0  # >0: a global speaker vector of this size is a condition
    sigma_min: float = 1e-6
    prompt_max_ratio: float = 0.3  # training prompt: a random prefix of U(0, ratio) of the frames
    cfg_dropout: float = 0.2  # probability of dropping every condition (classifier-free guidance)
    t_schedule: str = "cosine"  # "linear" or "cosine": time grid of training samples and the ODE
    max_len: int = 8192  # frames (positional table size)


@dataclass
class FlowOutput:
    loss: torch.Tensor  # masked MSE over non-prompt frames (scalar)
    n_frames: torch.Tensor  # frames in the loss
    mask: torch.Tensor  # (B, T) frames in the loss


@dataclass
class FlowConditions:
    """What the estimator reads besides ``x_t`` and ``t``, and the target of training."""

    x1: torch.Tensor  # (B, n_mels, T) normalized target mel (prompt frames included)
    mask: torch.Tensor  # (B, T) valid frames
    pmask: torch.Tensor  # (B, T) prompt frames (given, not generated)
    mu: torch.Tensor  # (B, n_mels, T) token encoding
    cond: torch.Tensor  # (B, n_mels, T) the prompt mel (zero elsewhere)
    spk: torch.Tensor  # (B, n_mels, T) speaker condition (zero without one)

    @property
    def loss_mask(self) -> torch.Tensor:
        """(B, T) the generated frames: valid and not prompt."""
        return self.mask & ~self.pmask


def sinusoidal(x: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding of positions or times ``x`` (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    arg = (x.float() * scale).unsqueeze(-1) * freqs
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


def time_schedule(t: torch.Tensor, kind: str) -> torch.Tensor:
    """Maps uniform times in [0, 1] to the schedule's (cosine: ``1 - cos(t pi / 2)``, as CosyVoice)."""
    if kind == "linear":
        return t
    if kind == "cosine":
        return 1 - torch.cos(t * 0.5 * math.pi)
    raise ValueError(f"unknown time schedule {kind!r} (linear, cosine)")


def ot_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma_min: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The OT conditional path and its velocity (Lipman et al. 2023, eq. 22-23).

    ``t`` broadcasts against ``x0`` (e.g. ``(B, 1, 1)``); returns ``(x_t, u_t)``."""
    x_t = (1 - (1 - sigma_min) * t) * x0 + t * x1
    u = x1 - (1 - sigma_min) * x0
    return x_t, u


def predict_x1(x_t: torch.Tensor, v: torch.Tensor, t, sigma_min: float) -> torch.Tensor:
    """The clean sample a velocity ``v`` at ``x_t`` implies on the OT path (:func:`ot_path` solved for
    ``x1``): ``(1 - sigma_min) x_t + (1 - (1 - sigma_min) t) v``; ``t`` broadcasts (e.g. ``(B, 1, 1)``)."""
    return (1 - sigma_min) * x_t + (1 - (1 - sigma_min) * t) * v


def masked_mse(v: torch.Tensor, u: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the frames where ``mask`` (B, T) is True; v, u: (B, C, T)."""
    m = mask.unsqueeze(1).to(v.dtype)
    return ((v - u) ** 2 * m).sum() / (m.sum() * v.shape[1]).clamp(min=1)


def guided_velocity(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance, CosyVoice's form: ``(1 + s) v_cond - s v_uncond``."""
    return v_cond + scale * (v_cond - v_uncond)


def fit_length(x: torch.Tensor, T: int) -> torch.Tensor:
    """Crops or right-pads (repeating the last frame) ``x`` (B, C, T') to T frames."""
    if x.shape[-1] >= T:
        return x[..., :T]
    if x.shape[-1] == 0:
        return x.new_zeros(*x.shape[:-1], T)
    return F.pad(x, (0, T - x.shape[-1]), mode="replicate")


class TokenEncoder(nn.Module):
    """Tokens (B, L) -> mu (B, n_mels, L * token_frames)."""

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        layer = nn.TransformerEncoderLayer(config.d_model, config.n_heads, config.d_ff, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, config.encoder_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        # after the x4 repetition a conv smooths the steps between tokens (CosyVoice: interpolate + conv)
        k = config.token_frames
        self.up_conv = nn.Conv1d(config.d_model, config.d_model, 2 * k + 1, padding=k)
        self.proj = nn.Conv1d(config.d_model, config.n_mels, 1)

    def forward(self, tokens: torch.Tensor, token_lens: torch.Tensor) -> torch.Tensor:
        B, L = tokens.shape
        mask = lengths_to_mask(token_lens, L)  # (B, L)
        pos = sinusoidal(torch.arange(L, device=tokens.device), self.config.d_model, scale=1.0)
        h = self.embed(tokens.clamp(0, self.config.vocab_size - 1)) + pos  # (B, L, D)
        h = self.norm(self.layers(h, src_key_padding_mask=~mask))
        h = h.masked_fill(~mask.unsqueeze(-1), 0.0)
        h = h.repeat_interleave(self.config.token_frames, dim=1).transpose(1, 2)  # (B, D, T)
        fmask = lengths_to_mask(token_lens * self.config.token_frames, h.shape[-1]).unsqueeze(1)
        h = F.gelu(self.up_conv(h)) * fmask
        return self.proj(h) * fmask  # (B, n_mels, T)


class EstimatorBlock(nn.Module):
    """adaLN(time) -> self-attention -> adaLN -> depthwise conv + feed-forward."""

    def __init__(self, config: FlowConfig):
        super().__init__()
        D = config.d_model
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False)
        self.qkv = nn.Linear(D, 3 * D)
        self.out = nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False)
        self.dwconv = nn.Conv1d(D, D, config.conv_kernel, padding=config.conv_kernel // 2, groups=D)
        self.ff = nn.Sequential(nn.Linear(D, config.d_ff), nn.GELU(), nn.Dropout(config.dropout),
                                nn.Linear(config.d_ff, D))
        self.mod = nn.Linear(D, 6 * D)  # shift, scale, gate for both halves
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, attn_mask: torch.Tensor, fmask: torch.Tensor):
        # x (B, T, D); temb (B, D); attn_mask (B, 1, 1, T) bool; fmask (B, T, 1)
        B, T, D = x.shape
        s1, c1, g1, s2, c2, g2 = self.mod(temb).unsqueeze(1).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + c1) + s1
        q, k, v = self.qkv(h).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + (1 + g1) * self.out(h.transpose(1, 2).reshape(B, T, D))
        h = (self.norm2(x) * (1 + c2) + s2) * fmask
        h = self.dwconv(h.transpose(1, 2)).transpose(1, 2)
        return (x + (1 + g2) * self.ff(h)) * fmask


class Estimator(nn.Module):
    """Velocity ``v(x_t, t | mu, cond, spk)``: (B, n_mels, T) each -> (B, n_mels, T)."""

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        D = config.d_model
        self.inp = nn.Linear(4 * config.n_mels, D)
        self.time_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.blocks = nn.ModuleList(EstimatorBlock(config) for _ in range(config.estimator_layers))
        self.norm = nn.LayerNorm(D)
        self.proj = nn.Linear(D, config.n_mels)

    def forward(self, x, mask, mu, t, spk, cond):
        # x, mu, cond, spk: (B, n_mels, T) (spk already broadcast); mask (B, T) bool; t (B,)
        B, _, T = x.shape
        h = torch.cat([x, mu, cond, spk], dim=1).transpose(1, 2)  # (B, T, 4 n_mels)
        h = self.inp(h) + sinusoidal(torch.arange(T, device=x.device), self.config.d_model, scale=1.0)
        temb = self.time_mlp(sinusoidal(t, self.config.d_model))  # (B, D)
        attn_mask = mask[:, None, None, :]
        fmask = mask.unsqueeze(-1).to(h.dtype)
        for blk in self.blocks:
            h = blk(h, temb, attn_mask, fmask)
        return self.proj(self.norm(h)).transpose(1, 2) * mask.unsqueeze(1)  # (B, n_mels, T)


class FlowMatching(nn.Module):
    def __init__(self, config: FlowConfig):
        super().__init__()
        if config.t_schedule not in ("linear", "cosine"):
            raise ValueError(f"FlowConfig.t_schedule={config.t_schedule!r}: choose linear or cosine")
        if not 0 <= config.prompt_max_ratio < 1:
            raise ValueError(f"FlowConfig.prompt_max_ratio={config.prompt_max_ratio}: must be in [0, 1)")
        self.config = config
        self.mvn = GlobalMVN(dim=config.n_mels, feat_axis=1)  # buffers; set_stats() or a state dict fills them
        self.encoder = TokenEncoder(config)
        self.spk_proj = nn.Linear(config.spk_embed_dim, config.n_mels) if config.spk_embed_dim > 0 else None
        self.estimator = Estimator(config)

    def set_stats(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Global mel mean/std (e.g. of ``FeatStats.load(stats.npz)``), saved with the weights."""
        with torch.no_grad():
            self.mvn.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            self.mvn.std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32).clamp(min=1e-5))

    def _spk(self, spk: torch.Tensor | None, B: int, T: int, ref: torch.Tensor) -> torch.Tensor:
        if self.spk_proj is None or spk is None:
            if spk is not None:
                raise ValueError("a speaker embedding was given but the model has spk_embed_dim=0")
            return ref.new_zeros(B, self.config.n_mels, T)
        s = F.normalize(spk.to(ref.dtype), dim=-1)  # unit norm, as CosyVoice
        return self.spk_proj(s).unsqueeze(-1).expand(B, self.config.n_mels, T)

    def conditions(self, tokens: torch.Tensor, token_lens: torch.Tensor, mel: torch.Tensor, mel_lens: torch.Tensor,
                   spk: torch.Tensor | None = None, prompt_lens: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, cfg_dropout: bool | None = None) -> FlowConditions:
        """The training target and conditions of a batch (see :meth:`forward`).

        The prompt is a random prefix of each target in training mode (``prompt_lens`` fixes it;
        none in eval mode); ``cfg_dropout`` (default: in training mode) drops every condition of an
        utterance with probability ``config.cfg_dropout``."""
        config = self.config
        B = tokens.shape[0]
        dev = mel.device
        T = tokens.shape[1] * config.token_frames  # the token grid decides the frames
        x1 = fit_length(self.mvn(mel), T)  # (B, C, T)
        lens = torch.minimum(mel_lens.to(dev), token_lens.to(dev) * config.token_frames)
        mask = lengths_to_mask(lens, T)  # (B, T)
        mu = self.encoder(tokens, token_lens)  # (B, C, T)

        def rand(*shape):
            return torch.rand(*shape, device=dev, generator=generator)

        if prompt_lens is None:
            prompt_lens = (rand(B) * config.prompt_max_ratio * lens).long() if self.training else torch.zeros_like(lens)
        pmask = lengths_to_mask(prompt_lens.to(dev), T)  # (B, T)
        cond = x1 * pmask.unsqueeze(1)
        spk_c = self._spk(spk, B, T, x1)
        if (self.training if cfg_dropout is None else cfg_dropout) and config.cfg_dropout > 0:
            keep = (rand(B) >= config.cfg_dropout).to(x1.dtype).view(B, 1, 1)
            mu, cond, spk_c = mu * keep, cond * keep, spk_c * keep
        return FlowConditions(x1, mask, pmask, mu, cond, spk_c)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, c: FlowConditions, cfg_scale: float = 0.0) -> torch.Tensor:
        """The estimator's velocity at ``x`` (B, C, T), times ``t`` (B,), under conditions ``c``;
        ``cfg_scale > 0``: guided (the conditional and unconditional passes in one batch of 2B)."""
        if cfg_scale == 0:
            return self.estimator(x, c.mask, c.mu, t, c.spk, c.cond)
        B = x.shape[0]
        v = self.estimator(torch.cat([x, x]), torch.cat([c.mask, c.mask]), torch.cat([c.mu, torch.zeros_like(c.mu)]),
                           torch.cat([t, t]), torch.cat([c.spk, torch.zeros_like(c.spk)]),
                           torch.cat([c.cond, torch.zeros_like(c.cond)]))
        return guided_velocity(v[:B], v[B:], cfg_scale)

    def forward(self, tokens: torch.Tensor, token_lens: torch.Tensor, mel: torch.Tensor, mel_lens: torch.Tensor,
                spk: torch.Tensor | None = None, prompt_lens: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> FlowOutput:
        """Flow-matching loss. tokens (B, L); mel (B, n_mels, T) log-mel; spk (B, spk_embed_dim).

        ``prompt_lens`` (B,) fixes the prompt frames (default: random prefixes); ``generator``
        makes noise, times, prompts and CFG drops reproducible."""
        c = self.conditions(tokens, token_lens, mel, mel_lens, spk, prompt_lens, generator)
        return self.flow_loss(c, generator)

    def flow_loss(self, c: FlowConditions, generator: torch.Generator | None = None) -> FlowOutput:
        """The flow-matching loss toward ``c.x1`` (normalized mel) over its non-prompt frames."""
        B = c.x1.shape[0]
        t = time_schedule(torch.rand(B, device=c.x1.device, generator=generator), self.config.t_schedule)
        x0 = torch.randn(c.x1.shape, device=c.x1.device, generator=generator, dtype=c.x1.dtype)
        x_t, u = ot_path(x0, c.x1, t.view(B, 1, 1), self.config.sigma_min)
        v = self.estimator(x_t, c.mask, c.mu, t, c.spk, c.cond)
        loss_mask = c.loss_mask
        return FlowOutput(masked_mse(v, u, loss_mask), loss_mask.sum(), loss_mask)

    @torch.no_grad()
    def synthesize(self, tokens: torch.Tensor, token_lens: torch.Tensor,
                   prompt_tokens: torch.Tensor | None = None, prompt_mel: torch.Tensor | None = None,
                   spk: torch.Tensor | None = None, n_steps: int = 10, cfg_scale: float = 0.7,
                   solver: str = "euler", generator: torch.Generator | None = None,
                   prompt_token_lens: torch.Tensor | None = None, prompt_mel_lens: torch.Tensor | None = None,
                   t_schedule: str | None = None, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel ``(B, n_mels, 4 L)`` of ``tokens`` (B, L) and its lengths ``4 token_lens``.

        With a prompt, ``prompt_tokens`` (B, P) and its log-mel ``prompt_mel`` (B, n_mels, Tp)
        are prepended (each prompt's ``prompt_mel_lens`` frames, default all, cropped or padded
        to 4 x its ``prompt_token_lens``); only the new frames are returned. Frames past an
        utterance's length are ``log(1e-5)`` (silence)."""
        config = self.config
        check_solver(solver, n_steps)
        dev = tokens.device
        B = tokens.shape[0]
        token_lens = token_lens.to(dev)
        if prompt_tokens is None or prompt_tokens.shape[1] == 0:
            p_lens = torch.zeros_like(token_lens)
            prompt_tokens = tokens.new_zeros(B, 0)
        else:
            p_lens = (prompt_token_lens if prompt_token_lens is not None
                      else torch.full((B,), prompt_tokens.shape[1], dtype=torch.long)).to(dev)
            if prompt_mel is None:
                raise ValueError("prompt_tokens given without prompt_mel")
        # pack [prompt_i | tokens_i] per utterance
        all_lens = p_lens + token_lens
        L = int(all_lens.max())
        seq = tokens.new_zeros(B, L)
        Tall = L * config.token_frames
        cond = torch.zeros(B, config.n_mels, Tall, device=dev)
        for i in range(B):
            p, n = int(p_lens[i]), int(token_lens[i])
            seq[i, :p] = prompt_tokens[i, :p]
            seq[i, p:p + n] = tokens[i, :n]
            if p:
                pm = prompt_mel[i:i + 1]
                if prompt_mel_lens is not None:
                    pm = pm[..., :int(prompt_mel_lens[i])]
                cond[i, :, :p * config.token_frames] = self.mvn(fit_length(pm, p * config.token_frames))[0]
        mask = lengths_to_mask(all_lens * config.token_frames, Tall)
        mu = self.encoder(seq, all_lens)
        c = FlowConditions(cond, mask, lengths_to_mask(p_lens * config.token_frames, Tall), mu, cond,
                           self._spk(spk, B, Tall, mu))  # x1: only its prompt frames (cond) are read
        x = torch.randn(mu.shape, device=dev, generator=generator, dtype=mu.dtype) * temperature
        x = self.solve(x, c, n_steps, cfg_scale, solver, generator, t_schedule)
        mel_full = self.mvn.inverse(x)  # (B, C, Tall)
        out_lens = token_lens * config.token_frames
        out = torch.full((B, config.n_mels, int(out_lens.max()) if B else 0), math.log(1e-5), device=dev)
        for i in range(B):
            s = int(p_lens[i]) * config.token_frames
            out[i, :, :int(out_lens[i])] = mel_full[i, :, s:s + int(out_lens[i])]
        return out, out_lens

    def solve(self, x: torch.Tensor, c: FlowConditions, n_steps: int, cfg_scale: float = 0.0, solver: str = "euler",
              generator: torch.Generator | None = None, t_schedule: str | None = None) -> torch.Tensor:
        """From noise ``x`` (B, C, T) at t = 0 to a normalized mel at t = 1 under conditions ``c``.

        ``euler``/``midpoint``: the ODE on the time grid of ``t_schedule`` (default the config's).
        ``renoise``: the few-step sampler of a distilled student (DMD2's multi-step generator):
        at ``t_k = k / n_steps`` predict the clean mel (:func:`predict_x1`; the prompt frames are the
        prompt's), then noise it afresh to ``t_{k+1}``; the last prediction is the output."""
        check_solver(solver, n_steps)
        B, dev = x.shape[0], x.device
        if solver == "renoise":
            for k in range(n_steps):
                x1 = self.predict_clean(x, k / n_steps, c, cfg_scale)
                if k + 1 < n_steps:
                    x = renoise(x1, (k + 1) / n_steps, self.config.sigma_min, generator)
            return x1
        ts = time_schedule(torch.linspace(0, 1, n_steps + 1, device=dev), t_schedule or self.config.t_schedule)
        for k in range(n_steps):
            t0, t1 = ts[k], ts[k + 1]
            dt = t1 - t0
            if solver == "euler":
                x = x + dt * self.velocity(x, torch.full((B,), float(t0), device=dev), c, cfg_scale)
            else:
                x_mid = x + 0.5 * dt * self.velocity(x, torch.full((B,), float(t0), device=dev), c, cfg_scale)
                x = x + dt * self.velocity(x_mid, torch.full((B,), float(t0 + 0.5 * dt), device=dev), c, cfg_scale)
        return x

    def predict_clean(self, x: torch.Tensor, t: float, c: FlowConditions, cfg_scale: float = 0.0) -> torch.Tensor:
        """The clean normalized mel the velocity at ``(x, t)`` implies, its prompt frames set to the prompt's."""
        tt = torch.full((x.shape[0],), float(t), device=x.device)
        x1 = predict_x1(x, self.velocity(x, tt, c, cfg_scale), t, self.config.sigma_min)
        return torch.where(c.pmask.unsqueeze(1), c.cond, x1)


SOLVERS = ("euler", "midpoint", "renoise")


def check_solver(solver: str, n_steps: int) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown flow solver {solver!r} ({', '.join(SOLVERS)})")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")


def renoise(x1: torch.Tensor, t: float, sigma_min: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x1`` noised afresh to time ``t`` on the OT path."""
    x0 = torch.randn(x1.shape, device=x1.device, generator=generator, dtype=x1.dtype)
    return ot_path(x0, x1, t, sigma_min)[0]


def load_flow(path: str | os.PathLike, device: str | torch.device = "cpu") -> FlowMatching:
    """The flow model of ``<dir>/model.pt`` (or the file ``path``) written by training (config, weights
    and mel stats); eval mode."""
    return load_model(path, FlowMatching, FlowConfig, "flow model", device)
