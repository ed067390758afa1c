"""Log-mel spectrograms with torch.stft: batched, differentiable, on any device.

Defaults (16 kHz): a 640-sample (40 ms) Hann window, 1024-point FFT, 160-sample hop,
i.e. 100 frames per second, so a 4x downsampling gives the 25 Hz speech-token rate.
80 Slaney mel bands from 0 to 8 kHz over the *magnitude* spectrum (the filterbank equals
``librosa.filters.mel(htk=False, norm="slaney")``, computed here in numpy because
importing librosa's filters costs seconds per process), then ``log(max(mel, 1e-5))`` (natural log, as HiFi-GAN / CosyVoice).

Frames are centered: the signal is reflect-padded by ``n_fft // 2`` at both ends (as
``librosa.stft(center=True)``), frame ``t`` is centered on sample ``t * hop_length`` and
an utterance of ``N`` samples has ``N // hop_length + 1`` frames. In a padded batch each
utterance is reflect-padded at its *own* end, so its frames equal those computed alone;
frames past an utterance's length are set to ``log(log_floor)`` (digital silence).

Usage::

    from ttsrl.feats.mel import MelConfig, MelExtractor

    mel_fn = MelExtractor(MelConfig())                  # nn.Module; .to(device) as usual
    mel, mel_lens = mel_fn(wav, wav_lens)               # (B, T) -> (B, 80, T // 160 + 1), (B,)
    feats = mel_fn.compute(wav_numpy)                   # (T_frames, 80) float32 numpy, for dumping
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 160
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0  # None: sample_rate / 2
    power: float = 1.0  # 1: magnitude, 2: power spectrum
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_fft % 2:
            raise ValueError(f"MelConfig: n_fft must be even, got {self.n_fft}")
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(
                f"MelConfig: need 0 < win_length <= n_fft, got {self.win_length} and {self.n_fft}"
            )
        if self.hop_length <= 0:
            raise ValueError(f"MelConfig: hop_length must be positive, got {self.hop_length}")
        fmax = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2:
            raise ValueError(
                f"MelConfig: need 0 <= fmin < fmax <= sample_rate / 2, got {self.fmin}, {self.fmax}"
            )

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames of an utterance of ``num_samples`` samples (centered framing)."""
        return num_samples // self.hop_length + 1

    def to_dict(self) -> dict:
        return asdict(self)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_region = f >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-normalized triangular mel filters ``(n_mels, n_fft // 2 + 1)`` float32, equal to
    ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))  # band edges in Hz
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # Slaney: constant energy per band
    return weights.astype(np.float32)


def reflect_indices(lengths: torch.Tensor, total: int, pad: int) -> torch.Tensor:
    """Sample indices ``(B, total)`` that reflect-pad each row by ``pad`` on the left and
    at its own length on the right (repeatedly when a row is shorter than ``pad``)."""
    pos = torch.arange(total, device=lengths.device).unsqueeze(0) - pad  # (1, total)
    n = lengths.clamp(min=1).unsqueeze(1)  # (B, 1)
    period = (2 * (n - 1)).clamp(min=1)
    idx = torch.remainder(pos, period)  # in [0, period)
    idx = torch.where(idx >= n, period - idx, idx)
    return torch.where(n > 1, idx, torch.zeros_like(idx))


class MelExtractor(nn.Module):
    """``(B, T_samples)`` waveforms -> ``(B, n_mels, T_frames)`` log-mel and frame lengths."""

    def __init__(self, config: MelConfig | None = None):
        super().__init__()
        self.config = c = config or MelConfig()
        basis = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)
        # constants of the configuration: not saved in checkpoints
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)  # (n_mels, F)
        self.register_buffer(
            "window", torch.hann_window(c.win_length), persistent=False
        )  # periodic, as librosa

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.config.hop_length, rounding_mode="floor") + 1

    def magnitude(
        self, wav: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear STFT magnitude ``(B, n_fft // 2 + 1, T_frames)`` and frame lengths ``(B,)``
        (frames past a length are not masked here)."""
        c = self.config
        if wav.dim() != 2:
            raise ValueError(f"MelExtractor: expected (B, T) waveforms, got shape {tuple(wav.shape)}")
        B, T = wav.shape
        if T == 0:
            raise ValueError("MelExtractor: empty waveform (0 samples)")
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=wav.device)
        lengths = lengths.to(device=wav.device, dtype=torch.long)
        pad = c.n_fft // 2
        idx = reflect_indices(lengths, T + 2 * pad, pad)  # (B, T + n_fft)
        x = torch.gather(wav, 1, idx.clamp(max=max(T - 1, 0)))  # (B, T + n_fft)
        spec = torch.stft(
            x,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window.to(x.dtype),
            center=False,
            return_complex=True,
        )  # (B, F, T_frames)
        # abs() of a complex tensor has a zero (not NaN) gradient at 0
        return spec.abs(), self.frame_lengths(lengths)

    def forward(
        self, wav: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        mag, frame_lens = self.magnitude(wav, lengths)  # (B, F, T_frames)
        if c.power != 1.0:
            mag = mag.pow(c.power)
        mel = torch.matmul(self.mel_basis.to(mag.dtype), mag)  # (B, n_mels, T_frames)
        mel = torch.log(torch.clamp(mel, min=c.log_floor))
        t = torch.arange(mel.shape[-1], device=mel.device)
        pad_mask = t.unsqueeze(0) >= frame_lens.unsqueeze(1)  # (B, T_frames)
        mel = mel.masked_fill(pad_mask.unsqueeze(1), math.log(c.log_floor))
        return mel, frame_lens

    @torch.no_grad()
    def compute(self, wav: np.ndarray) -> np.ndarray:
        """One utterance ``(T_samples,)`` -> ``(T_frames, n_mels)`` float32 (Kaldi layout)."""
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=self.mel_basis.device).unsqueeze(0)
        mel, _ = self(x)
        return mel[0].T.contiguous().cpu().numpy()
