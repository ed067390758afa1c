"""Vocoders: log-mel ``(B, n_mels, T)`` -> waveform ``(B, samples)``.

- :class:`GriffinLim`: training-free. The mel filterbank is inverted to a linear magnitude
  (pseudo-inverse, then non-negative least-squares refinement by multiplicative updates, the
  role NNLS plays in ``librosa.feature.inverse.mel_to_stft``), then the phase is estimated with
  the fast Griffin-Lim algorithm (Perraudin et al. 2013) over ``torch.stft``/``istft``.
- :class:`VocosVocoder`: trainable, Vocos-style (Siuzdak 2023): a ConvNeXt backbone at the
  frame rate predicts the STFT log-magnitude and phase of each frame, and an inverse STFT
  makes the waveform, so there is no upsampling stack. The log-magnitude is predicted as a
  residual over the input mel spread back to the STFT bins (``mel_prior``): magnitudes start
  near the right level (digital silence is log 1e-5, far from a zero-initialized head), which
  matters on CPU budgets of hundreds of steps. Trained with a multi-resolution STFT loss
  (spectral convergence + log magnitude, Yamamoto et al. 2020, eq. 4-6) plus a mel L1 loss.
  No discriminators are implemented (the adversarial loss of Vocos/HiFi-GAN is left out):
  phase is learned from the STFT losses alone, so the audio tends to be over-smoothed.

Both expose ``mel_to_wav(mel, mel_lens) -> (wav, wav_lens)`` with ``wav_lens = (mel_lens - 1)
* hop_length``: the number of samples whose centered framing gives ``mel_lens`` frames.

Usage::

    voc = build_vocoder("griffin_lim")                     # or build_vocoder("vocos", "exp/base/vocoder/model.pt")
    wav, wav_lens = voc.mel_to_wav(mel, mel_lens)          # (B, 80, T) -> (B, (T - 1) * 160)

    model = VocosVocoder(VocosConfig())
    out = model(wav, wav_lens)                             # training: out.loss, out.stats
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ttsrl.feats.mel import MelConfig, MelExtractor, mel_filterbank
from ttsrl.models.modules import lengths_to_mask
from ttsrl.utils.checkpoint import load_model


def wav_lengths(mel_lens: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Samples synthesized for ``mel_lens`` frames (centered framing: N // hop + 1 == T)."""
    return (mel_lens.clamp(min=1) - 1) * hop_length


def frame_lengths(mel: torch.Tensor, mel_lens: torch.Tensor | None) -> torch.Tensor:
    """``mel_lens`` on the mel's device, or every frame of ``mel (B, n_mels, T)`` when None."""
    if mel_lens is None:
        return torch.full((mel.shape[0],), mel.shape[-1], dtype=torch.long, device=mel.device)
    return mel_lens.to(mel.device)


class GriffinLim(nn.Module):
    """Log-mel -> magnitude (filterbank inversion) -> fast Griffin-Lim phase -> waveform."""

    def __init__(self, mel_config: MelConfig | None = None, n_iter: int = 32, momentum: float = 0.99,
                 nnls_iter: int = 30, seed: int = 0):
        super().__init__()
        self.mel_config = c = mel_config or MelConfig()
        self.n_iter, self.momentum, self.nnls_iter, self.seed = n_iter, momentum, nnls_iter, seed
        basis = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax).astype(np.float64)
        self.register_buffer("basis", torch.from_numpy(basis).float(), persistent=False)  # (M, F)
        self.register_buffer("pinv", torch.from_numpy(np.linalg.pinv(basis)).float(), persistent=False)  # (F, M)
        self.register_buffer("window", torch.hann_window(c.win_length), persistent=False)

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, M, T) log-mel -> (B, F, T) non-negative magnitude with ``basis @ S ~= exp(mel)``."""
        c = self.mel_config
        y = torch.exp(mel).pow(1.0 / c.power) if c.power != 1.0 else torch.exp(mel)
        s = torch.matmul(self.pinv, y).clamp(min=1e-8)
        bty = torch.matmul(self.basis.T, y)
        btb = self.basis.T @ self.basis  # (F, F)
        for _ in range(self.nnls_iter):  # Lee-Seung updates keep S >= 0 and lower ||B S - Y||
            s = s * bty / (torch.matmul(btb, s) + 1e-10)
        return s

    def _stft(self, x: torch.Tensor) -> torch.Tensor:
        c = self.mel_config
        return torch.stft(x, c.n_fft, c.hop_length, c.win_length, self.window, center=True,
                          pad_mode="reflect", return_complex=True)

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        c = self.mel_config
        return torch.istft(spec, c.n_fft, c.hop_length, c.win_length, self.window, center=True, length=length)

    @torch.no_grad()
    def mel_to_wav(self, mel: torch.Tensor, mel_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        T = mel.shape[-1]
        mel_lens = frame_lengths(mel, mel_lens)
        mag = self.mel_to_magnitude(mel.float()) * lengths_to_mask(mel_lens, T).unsqueeze(1)  # (B, F, T)
        n = (T - 1) * self.mel_config.hop_length
        g = torch.Generator().manual_seed(self.seed)  # CPU generator: the same phases on every device
        angles = torch.polar(torch.ones(mag.shape), 2 * math.pi * torch.rand(mag.shape, generator=g)).to(mel.device)
        prev = torch.zeros_like(angles)
        alpha = self.momentum / (1 + self.momentum)
        for _ in range(self.n_iter):
            rebuilt = self._stft(self._istft(mag * angles, n))[..., :T]
            angles = rebuilt - alpha * prev
            angles = angles / angles.abs().clamp(min=1e-16)
            prev = rebuilt
        wav = self._istft(mag * angles, n)
        wav_lens = wav_lengths(mel_lens, self.mel_config.hop_length)
        return wav * lengths_to_mask(wav_lens, n), wav_lens


@dataclass
class VocosConfig(MelConfig):
    """The mel front-end's fields (those of :class:`MelConfig`, which must equal the features') and the model's.

    The mel fields are inherited, not nested, so a ``model_conf`` keeps them at its top level
    (as vocoders trained before have them)."""

    head_n_fft: int = 640  # the iSTFT the model predicts (hop = hop_length)
    dim: int = 384
    n_layers: int = 8
    intermediate_dim: int = 1152
    kernel_size: int = 7
    layer_scale: float = 0.1  # initial ConvNeXt layer scale (Vocos: 1 / n_layers)
    mel_prior: bool = True  # predict the log-magnitude as a residual over the mel spread back to STFT bins
    mel_loss_weight: float = 1.0
    stft_loss_weight: float = 1.0
    stft_resolutions: tuple[int, ...] = (1024, 256, 512, 128, 256, 64)  # (n_fft, hop) pairs, 16 kHz

    def mel_config(self) -> MelConfig:
        """The mel front-end alone."""
        return MelConfig(**{f.name: getattr(self, f.name) for f in fields(MelConfig)})


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, hidden)
        self.pw2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T)
        h = self.dwconv(x).transpose(1, 2)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    win = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop, n_fft, win, center=True, return_complex=True)
    return spec.abs().clamp(min=1e-5)  # (B, F, T); the floor of the log-mel too


def multi_resolution_stft_loss(y_hat: torch.Tensor, y: torch.Tensor,
                               resolutions: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral convergence and log-magnitude L1, averaged over resolutions (Yamamoto et al. 2020, eq. 4-6).

    y_hat, y: (B, N). Returns ``(sc, mag)``."""
    sc = mag = 0.0
    for n_fft, hop in resolutions:
        s_hat, s = stft_magnitude(y_hat, n_fft, hop), stft_magnitude(y, n_fft, hop)
        sc = sc + torch.linalg.norm(s - s_hat) / torch.linalg.norm(s).clamp(min=1e-7)
        mag = mag + F.l1_loss(torch.log(s_hat), torch.log(s))
    return sc / len(resolutions), mag / len(resolutions)


@dataclass
class VocoderOutput:
    loss: torch.Tensor
    stats: dict


class VocosVocoder(nn.Module):
    def __init__(self, config: VocosConfig):
        super().__init__()
        if len(config.stft_resolutions) % 2:
            raise ValueError("VocosConfig.stft_resolutions: a flat list of (n_fft, hop) pairs")
        self.config = config
        self.mel = MelExtractor(config.mel_config())
        self.embed = nn.Conv1d(config.n_mels, config.dim, config.kernel_size, padding=config.kernel_size // 2)
        self.norm_in = nn.LayerNorm(config.dim)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, config.kernel_size, config.layer_scale)
            for _ in range(config.n_layers)
        )
        self.norm_out = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.head_n_fft + 2)  # log-magnitude and phase of head_n_fft // 2 + 1 bins
        self.register_buffer("window", torch.hann_window(config.head_n_fft), persistent=False)
        self.register_buffer("mel_to_lin", self._mel_to_linear(config), persistent=False)  # (F, M)
        self.register_buffer("band_gain", self._band_log_gain(config), persistent=False)  # (M, 1)

    @staticmethod
    def _head_basis(config: VocosConfig) -> np.ndarray:
        c = config
        return mel_filterbank(c.sample_rate, c.head_n_fft, c.n_mels, c.fmin, c.fmax).astype(np.float64)

    @classmethod
    def _mel_to_linear(cls, config: VocosConfig) -> torch.Tensor:
        """Each STFT bin averages the log-mel of the bands that cover it (nearest band if none)."""
        w = cls._head_basis(config).T  # (F, M)
        freqs = np.linspace(0, config.sample_rate / 2, w.shape[0])
        centers = (w * freqs[:, None]).sum(0) / np.maximum(w.sum(0), 1e-12)
        for f in np.where(w.sum(1) == 0)[0]:
            w[f, np.argmin(np.abs(centers - freqs[f]))] = 1.0
        return torch.from_numpy(w / w.sum(1, keepdims=True)).float()

    @classmethod
    def _band_log_gain(cls, config: VocosConfig) -> torch.Tensor:
        """log of each band's total filter weight: a flat magnitude A gives a mel of A x weight."""
        return torch.from_numpy(np.log(np.maximum(cls._head_basis(config).sum(1), 1e-12))).float().unsqueeze(1)

    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-mel -> (B, (T - 1) * hop) waveform."""
        config = self.config
        h = self.embed(mel)
        h = self.norm_in(h.transpose(1, 2)).transpose(1, 2)
        for blk in self.blocks:
            h = blk(h)
        h = self.head(self.norm_out(h.transpose(1, 2))).transpose(1, 2)  # (B, n_fft + 2, T)
        logmag, phase = h.chunk(2, dim=1)
        if config.mel_prior:  # the magnitude starts near the right level; the network learns the residual
            logmag = logmag + torch.matmul(self.mel_to_lin, mel - self.band_gain)
        mag = torch.exp(logmag.clamp(max=math.log(100.0)))  # Vocos: clip the magnitude at 100
        spec = torch.polar(mag.float(), phase.float())  # (B, F, T)
        n = (mel.shape[-1] - 1) * config.hop_length
        return torch.istft(spec, config.head_n_fft, config.hop_length, config.head_n_fft, self.window.float(),
                           center=True, length=n)

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> VocoderOutput:
        """Training loss on waveform segments (B, N): resynthesize from their mel and compare."""
        config = self.config
        mel, mel_lens = self.mel(wav, wav_lens)  # (B, M, T)
        y_hat = self.decode(mel)
        n = y_hat.shape[-1]
        y = wav[:, :n]
        if wav_lens is not None:  # zero past each length, in both
            m = lengths_to_mask(wav_lengths(mel_lens, config.hop_length), n).to(y.dtype)
            y, y_hat = y * m, y_hat * m
        r = config.stft_resolutions
        res = [(r[i], r[i + 1]) for i in range(0, len(r), 2)]
        sc, mag = multi_resolution_stft_loss(y_hat, y, res)
        mel_hat, _ = self.mel(y_hat, wav_lengths(mel_lens, config.hop_length))
        T = min(mel_hat.shape[-1], mel.shape[-1])
        fm = lengths_to_mask(mel_lens, T).unsqueeze(1).to(mel.dtype)
        mel_l1 = ((mel_hat[..., :T] - mel[..., :T]).abs() * fm).sum() / (fm.sum() * mel.shape[1]).clamp(min=1)
        loss = config.stft_loss_weight * (sc + mag) + config.mel_loss_weight * mel_l1
        return VocoderOutput(loss, {"sc": sc.detach(), "log_mag": mag.detach(), "mel_l1": mel_l1.detach()})

    @torch.no_grad()
    def mel_to_wav(self, mel: torch.Tensor, mel_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mel_lens = frame_lengths(mel, mel_lens)
        wav = self.decode(mel)
        wav_lens = wav_lengths(mel_lens, self.config.hop_length)
        return wav * lengths_to_mask(wav_lens, wav.shape[-1]), wav_lens


def load_vocos(path: str | os.PathLike, device: str | torch.device = "cpu") -> VocosVocoder:
    """The Vocos vocoder of ``<dir>/model.pt`` (or the file ``path``) written by training; eval mode."""
    return load_model(path, VocosVocoder, VocosConfig, "Vocos vocoder", device)


def build_vocoder(kind: str = "griffin_lim", path: str | None = None, device: str | torch.device = "cpu",
                  mel_config: MelConfig | None = None, **kwargs) -> GriffinLim | VocosVocoder:
    """``griffin_lim`` (no weights; ``kwargs`` go to :class:`GriffinLim`) or ``vocos`` (``path`` to its model.pt)."""
    if kind == "griffin_lim":
        return GriffinLim(mel_config, **kwargs).to(device).eval()
    if kind == "vocos":
        if path is None:
            raise ValueError("build_vocoder('vocos') needs the path of a trained model.pt")
        return load_vocos(path, device)
    raise ValueError(f"unknown vocoder {kind!r} (griffin_lim, vocos)")
