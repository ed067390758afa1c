"""Speaker encoder on log-mel: an x-vector-style TDNN with attentive statistics pooling.

A small speaker-verification model trained on the corpus' training speakers (stage 4 with
``--flow_student dmo``). It is the speaker-verification loss of DMO (DMOSpeech): the cosine
distance between the embedding of the student's mel and that of the reference is
differentiable into the student. It reads mel, so no vocoder sits between the student and the
loss. It is *not* the SIM judge (resemblyzer, on audio), which scores the results::

    mel (B, T, n_mels) --GlobalMVN--> TDNN: Conv1d(k_i, dilation d_i) + ReLU + BatchNorm, x len(kernels)
        --attentive statistics pooling (Okabe et al. 2018): weighted mean and std over frames-->
        (B, 2 C) --Linear--> embedding (B, embed_dim) --[training] AAM-softmax over speakers-->

Training (``ttsrl.bin.train_speaker_encoder``) uses the additive angular margin softmax
(:func:`ttsrl.losses.speaker.aam_softmax_loss`, Deng et al. 2019) on random crops; the dev
equal-error rate (:func:`ttsrl.score.speaker.equal_error_rate`) over all pairs of dev
utterances is its metric.

Usage::

    model = SpeakerEncoder(SpeakerEncoderConfig(n_speakers=16))
    emb = model(mel, mel_lens)                        # (B, embed_dim), unit norm
    logits = model.speaker_cosines(emb)               # (B, n_speakers) cosines to the speaker weights
    enc = load_speaker_encoder("exp/base/spk")       # eval mode
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ttsrl.feats.stats import GlobalMVN
from ttsrl.models.modules import lengths_to_mask
from ttsrl.utils.checkpoint import load_model

__all__ = ["SpeakerEncoder", "SpeakerEncoderConfig", "crop_windows", "load_speaker_encoder"]


@dataclass
class SpeakerEncoderConfig:
    n_speakers: int = 0  # training speakers (the classifier's rows); set from utt2spk
    n_mels: int = 80
    channels: int = 256  # TDNN channels
    kernels: list[int] = field(default_factory=lambda: [5, 3, 3, 1])  # one TDNN layer each
    dilations: list[int] = field(default_factory=lambda: [1, 2, 3, 1])
    attention_dim: int = 64  # hidden size of the pooling's frame scorer
    embed_dim: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if len(self.kernels) != len(self.dilations) or not self.kernels:
            raise ValueError(f"SpeakerEncoderConfig: kernels {self.kernels} and dilations {self.dilations} "
                             "must be non-empty lists of one length")


class AttentiveStatsPooling(nn.Module):
    """(B, C, T) frames + mask (B, T) -> (B, 2 C): attention-weighted mean and standard deviation."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, channels, 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(h).masked_fill(~mask[:, None, :], float("-inf"))  # (B, C, T)
        w = torch.softmax(logits, dim=-1)
        mean = (w * h).sum(-1)
        var = (w * h * h).sum(-1) - mean * mean
        return torch.cat([mean, var.clamp(min=1e-6).sqrt()], dim=-1)


class SpeakerEncoder(nn.Module):
    def __init__(self, config: SpeakerEncoderConfig):
        super().__init__()
        self.config = c = config
        self.mvn = GlobalMVN(dim=c.n_mels)  # buffers: set_stats() or a state dict fills them
        layers, cin = [], c.n_mels
        for k, d in zip(c.kernels, c.dilations, strict=True):
            layers += [nn.Conv1d(cin, c.channels, k, dilation=d, padding=d * (k - 1) // 2), nn.ReLU(),
                       nn.BatchNorm1d(c.channels)]
            cin = c.channels
        self.tdnn = nn.Sequential(*layers)
        self.dropout = nn.Dropout(c.dropout)
        self.pool = AttentiveStatsPooling(c.channels, c.attention_dim)
        self.embed = nn.Linear(2 * c.channels, c.embed_dim)
        # AAM-softmax speaker weights (cosine classifier); absent when no speakers are known
        self.speaker_weight = nn.Parameter(torch.randn(c.n_speakers, c.embed_dim) * 0.01) if c.n_speakers > 0 else None

    def set_stats(self, stats: str | os.PathLike | GlobalMVN) -> None:
        """Use the global mean/std of ``stats`` (a ``stats.npz`` or a GlobalMVN) to normalize mels."""
        self.mvn.set_stats(stats)

    def forward(self, mel: torch.Tensor, mel_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Raw log-mel ``(B, T, n_mels)`` -> unit-norm embeddings ``(B, embed_dim)``; differentiable in ``mel``.

        Padded frames (past ``mel_lens``) do not change an utterance's embedding in eval mode."""
        if mel.dim() != 3 or mel.shape[-1] != self.config.n_mels:
            raise ValueError(f"expected mel (B, T, {self.config.n_mels}), got {tuple(mel.shape)}")
        B, T, _ = mel.shape
        if mel_lens is None:
            mel_lens = torch.full((B,), T, dtype=torch.long, device=mel.device)
        mask = lengths_to_mask(mel_lens.to(mel.device).clamp(min=1), T)  # (B, T)
        x = (self.mvn(mel) * mask[..., None]).transpose(1, 2)  # (B, n_mels, T)
        h = x
        for layer in self.tdnn:
            h = layer(h)
            if isinstance(layer, nn.BatchNorm1d):  # keep padded frames at zero through the convolutions
                h = h * mask[:, None, :]
        h = self.dropout(h)
        return F.normalize(self.embed(self.pool(h, mask)), dim=-1)

    def speaker_cosines(self, emb: torch.Tensor) -> torch.Tensor:
        """Cosines ``(B, n_speakers)`` of unit embeddings to the training speakers' weights."""
        if self.speaker_weight is None:
            raise ValueError("this speaker encoder has no speaker classifier (n_speakers=0)")
        return emb @ F.normalize(self.speaker_weight, dim=-1).t()


def crop_windows(mel: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, frames: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A window of at most ``frames`` of each row's frames ``[starts, ends)`` of ``mel`` (B, T, C) (random
    when longer; gradients flow into ``mel``): training crops, the generated part of a prompted sample.
    Returns (B, T', C), zero-padded, and the lengths."""
    B = mel.shape[0]
    lens = (ends - starts).clamp(min=1)
    out_lens = lens.clamp(max=frames)
    rows = []
    for i in range(B):
        n, m = int(lens[i]), int(out_lens[i])
        off = int(starts[i]) + (int(torch.randint(0, n - m + 1, (), generator=generator)) if n > m else 0)
        off = min(off, mel.shape[1] - m)
        rows.append(F.pad(mel[i, off:off + m], (0, 0, 0, int(out_lens.max()) - m)))
    return torch.stack(rows), out_lens


def load_speaker_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> SpeakerEncoder:
    """The speaker encoder of ``<dir>/model.pt`` (or the file ``path``); eval mode."""
    return load_model(path, SpeakerEncoder, SpeakerEncoderConfig, "speaker encoder", device, require="embed_dim")
