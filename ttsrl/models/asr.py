"""CTC ASR over log-mel: the judge that transcribes ground-truth and synthesized audio (stage 9).

A character CTC recognizer trained only on the corpus' ground-truth audio::

    mel (B, T, 80) --augment (training only)--> --GlobalMVN--> --Conv1dSubsampling x4--> (B, T/4, D)
        --Encoder (conformer or transformer layers)--> --LinearUpsample x ctc_upsample--> (B, T', V) log-probs

The head emits ``ctc_upsample`` frames per encoder frame: espeak-ng speech reaches about
20 characters per second, close to the 25 frames/s after subsampling, and CTC needs a
frame per character plus one between repeated characters.

Augmentation runs in ``train()`` mode only and costs next to nothing on a CPU: a tempo
change (linear interpolation of the mel frames), an additive noise floor (added in the
linear magnitude domain of the log-mel) and SpecAugment time and frequency masks
(Park et al. 2019). In ``eval()`` mode an utterance's output does not depend on its batch.

The model holds its global mean/variance normalization (buffers), its mel configuration
and its character list (in the config), so one ``model.pt`` rebuilds it and it
transcribes any audio (``transcribe_wav`` resamples to 16 kHz).

Usage::

    from ttsrl.models.asr import CTCASR, CTCASRConfig

    model = CTCASR(CTCASRConfig(token_list=["<blank>", "<unk>", "<space>", "e", ..., "<sos/eos>"]))
    out = model(mel, mel_lens, text, text_lens)      # raw log-mel (B, T, 80); out.loss (per target char)
    asr = CTCASR.from_pretrained("exp/judge")         # eval mode, on the CPU
    asr.transcribe_wav([wav1, wav2], 16000)           # ["hello world", ...] greedy CTC
    asr.ctc_nll([wav1], 16000, ["hello world"])       # [0.03]: CTC NLL of the text / its characters
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ttsrl.feats.augment import spec_augment
from ttsrl.feats.mel import MelConfig, MelExtractor
from ttsrl.feats.stats import GlobalMVN
from ttsrl.models.ctc import greedy_ctc
from ttsrl.models.modules import Conv1dSubsampling, Encoder, LinearUpsample, lengths_to_mask
from ttsrl.utils.checkpoint import load_model
from ttsrl.utils.config import build_dataclass

__all__ = ["ASROutput", "CTCASR", "CTCASRConfig", "asr_conf_dict", "greedy_ctc"]


@dataclass
class CTCASRConfig:
    token_list: list[str] = field(default_factory=list)  # CTC characters (0 = <blank>); set from the train text
    mel: MelConfig = field(default_factory=MelConfig)  # features the model expects (and computes from audio)
    d_model: int = 144
    n_heads: int = 4
    d_ff: int = 576
    n_layers: int = 4
    conv_kernel: int = 15  # conformer convolution kernel; 0 = plain transformer layers
    subsample: int = 4  # mel frames per encoder frame (100 -> 25 frames/s)
    ctc_upsample: int = 2  # CTC output frames per encoder frame
    dropout: float = 0.1
    # augmentation, training mode only
    time_masks: int = 2  # SpecAugment time masks per utterance ...
    time_mask_ratio: float = 0.05  # ... each up to this share of the utterance's frames
    freq_masks: int = 2  # SpecAugment frequency masks ...
    freq_mask_width: int = 10  # ... each up to this many mel bins
    tempo_prob: float = 0.5  # probability of a tempo change of a batch ...
    tempo_range: tuple[float, float] = (0.9, 1.1)  # ... by a factor drawn from this range
    noise_prob: float = 0.3  # probability of a noise floor per utterance ...
    noise_snr_db: tuple[float, float] = (10.0, 30.0)  # ... this far below the utterance's mean level

    def __post_init__(self) -> None:
        if isinstance(self.mel, Mapping):
            self.mel = build_dataclass(MelConfig, self.mel, "CTCASRConfig.mel")
        self.token_list = [str(t) for t in self.token_list]
        self.tempo_range = tuple(float(v) for v in self.tempo_range)
        self.noise_snr_db = tuple(float(v) for v in self.noise_snr_db)

    @property
    def vocab_size(self) -> int:
        return len(self.token_list)


@dataclass
class ASROutput:
    loss: torch.Tensor  # summed CTC loss / target characters (0 without text)
    log_probs: torch.Tensor  # (B, T', V)
    lens: torch.Tensor  # (B,)


class CTCASR(nn.Module):
    def __init__(self, config: CTCASRConfig):
        super().__init__()
        c = self.config = config
        if c.vocab_size < 3:
            raise ValueError(f"CTCASRConfig.token_list has {c.vocab_size} tokens: set it to the CTC character list")
        from ttsrl.text.tokenizer import CharTokenizer

        self.tokenizer = CharTokenizer(c.token_list)
        n_mels = c.mel.n_mels
        self.mel_extractor = MelExtractor(c.mel)  # no persistent buffers: rebuilt from config.mel
        self.mvn = GlobalMVN(dim=n_mels)  # identity until set_stats or a state dict is loaded
        self.subsampling = Conv1dSubsampling(n_mels, c.d_model, c.subsample, dropout=c.dropout)
        self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.conv_kernel, c.dropout)
        self.ctc_out = LinearUpsample(c.d_model, c.vocab_size, max(c.ctc_upsample, 1))

    # ------------------------------------------------------------------ setup / loading
    def set_stats(self, stats: str | os.PathLike | GlobalMVN) -> None:
        """Normalize mels with the global mean/std of ``stats`` (a ``stats.npz`` or a GlobalMVN)."""
        self.mvn.set_stats(stats)

    @property
    def device(self) -> torch.device:
        return self.mvn.mean.device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> CTCASR:
        """Load ``<path>/model.pt`` (or the file ``path``) written by ``ttsrl.bin.train_asr``; eval mode."""
        return load_model(path, cls, CTCASRConfig, "CTC ASR model", device, require="token_list")

    # ------------------------------------------------------------------ augmentation
    def augment(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tempo change and noise floor on raw log-mel ``(B, T, F)`` (SpecAugment comes after MVN)."""
        c = self.config
        lo, hi = c.tempo_range
        if c.tempo_prob > 0 and hi > lo and float(torch.rand(())) < c.tempo_prob:
            rate = lo + (hi - lo) * float(torch.rand(()))  # > 1: faster speech, fewer frames
            T = mel.shape[1]
            new_T = max(1, int(round(T / rate)))
            mel = F.interpolate(mel.transpose(1, 2), size=new_T, mode="linear", align_corners=False).transpose(1, 2)
            mel_lens = (mel_lens.float() * new_T / T).round().long().clamp(1, new_T)
        if c.noise_prob > 0:
            B = mel.shape[0]
            valid = lengths_to_mask(mel_lens, mel.shape[1])[..., None].to(mel.dtype)  # (B, T, 1)
            mag = mel.exp()
            level = (mag * valid).sum((1, 2)) / (valid.sum((1, 2)) * mel.shape[2])  # (B,) mean magnitude
            snr = c.noise_snr_db[0] + (c.noise_snr_db[1] - c.noise_snr_db[0]) * torch.rand(B, device=mel.device)
            on = (torch.rand(B, device=mel.device) < c.noise_prob).to(mel.dtype)
            tilt = torch.rand(B, 1, mel.shape[2], device=mel.device) + 0.5  # a random spectral colour
            noise = (level * 10 ** (-snr / 20) * on)[:, None, None] * tilt * torch.rand_like(mel) * 2
            mel = torch.log(mag + noise).clamp(min=math.log(c.mel.log_floor))
        return mel, mel_lens

    # ------------------------------------------------------------------ core
    def encode(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw log-mel ``(B, T, n_mels)`` -> CTC log-probs ``(B, T', V)`` and lengths ``(B,)``."""
        if mel.dim() != 3 or mel.shape[-1] != self.config.mel.n_mels:
            raise ValueError(f"expected mel (B, T, {self.config.mel.n_mels}), got {tuple(mel.shape)}")
        c = self.config
        mel_lens = mel_lens.to(mel.device).clamp(min=1)
        if self.training:
            mel, mel_lens = self.augment(mel, mel_lens)
        x = self.mvn(mel)
        if self.training and (c.time_masks or c.freq_masks):
            x = spec_augment(x, mel_lens, c.freq_masks, c.freq_mask_width, c.time_masks,
                             (c.time_mask_ratio * mel_lens).long())
        h, lens = self.subsampling(x, mel_lens)  # (B, T/4, D)
        h = self.encoder(h, lens)
        logits = self.ctc_out(h)  # (B, T/4 * k, V)
        return F.log_softmax(logits.float(), dim=-1), lens * self.ctc_out.factor

    def forward(
        self,
        mel: torch.Tensor,
        mel_lens: torch.Tensor,
        text: torch.Tensor | None = None,
        text_lens: torch.Tensor | None = None,
    ) -> ASROutput:
        """mel ``(B, T, n_mels)`` raw log-mel, text ``(B, L)`` char ids (no blank), lengths ``(B,)``."""
        log_probs, lens = self.encode(mel, mel_lens)
        if text is None:
            return ASROutput(log_probs.new_zeros(()), log_probs, lens)
        assert text_lens is not None, "text needs text_lens"
        text_lens = text_lens.to(log_probs.device)
        loss = F.ctc_loss(
            log_probs.transpose(0, 1), text.to(log_probs.device), lens, text_lens,
            blank=0, reduction="sum", zero_infinity=True,  # a target longer than its frames counts 0, not inf
        )  # fmt: skip
        return ASROutput(loss / text_lens.sum().clamp(min=1), log_probs, lens)

    # ------------------------------------------------------------------ inference
    def wav_to_mel(self, wavs: Sequence[Any] | Any, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms (a list of ``(T_i,)`` arrays, or one array) -> raw log-mel ``(B, T, n_mels)``, lengths."""
        if isinstance(wavs, np.ndarray | torch.Tensor) and wavs.ndim == 1:
            wavs = [wavs]
        target = self.config.mel.sample_rate
        rows = []
        for w in wavs:
            w = np.asarray(w.detach().cpu() if torch.is_tensor(w) else w, dtype=np.float32).reshape(-1)
            if sample_rate != target and w.size:
                import soxr

                w = soxr.resample(w, sample_rate, target, quality="HQ").astype(np.float32)
            rows.append(w if w.size else np.zeros(self.config.mel.hop_length, dtype=np.float32))
        wav_lens = torch.tensor([len(r) for r in rows], dtype=torch.long)
        wav = torch.zeros(len(rows), int(wav_lens.max()))
        for i, r in enumerate(rows):
            wav[i, : len(r)] = torch.from_numpy(r)
        mel, mel_lens = self.mel_extractor(wav.to(self.device), wav_lens.to(self.device))
        return mel.transpose(1, 2), mel_lens  # (B, T, n_mels)

    @torch.no_grad()
    def decode(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> list[str]:
        """Greedy CTC transcripts (normalized text: lowercase, no punctuation) of raw log-mels."""
        log_probs, lens = self.encode(mel, mel_lens)
        return [self.tokenizer.decode(ids) for ids in greedy_ctc(log_probs, lens)]

    @torch.no_grad()
    def transcribe_wav(self, wavs: Sequence[Any] | Any, sample_rate: int, batch_size: int = 16) -> list[str]:
        """Greedy CTC transcripts of waveforms at any ``sample_rate`` (resampled to the model's)."""
        wavs = [wavs] if isinstance(wavs, np.ndarray | torch.Tensor) and wavs.ndim == 1 else list(wavs)
        out: list[str] = []
        for i in range(0, len(wavs), batch_size):
            out.extend(self.decode(*self.wav_to_mel(wavs[i : i + batch_size], sample_rate)))
        return out

    @torch.no_grad()
    def ctc_nll(
        self, wavs: Sequence[Any] | Any, sample_rate: int, texts: Sequence[str] | str, batch_size: int = 16
    ) -> list[float]:
        """Per utterance: -log P_ctc(text | audio) / number of text characters (ARDM-DPO's robustness metric).

        ``text`` is normalized and split as in training (``<space>`` counts as a character).
        An empty text, or one longer than the CTC frames can hold, gives ``inf``.
        """
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        wavs = [wavs] if isinstance(wavs, np.ndarray | torch.Tensor) and wavs.ndim == 1 else list(wavs)
        if len(wavs) != len(texts):
            raise ValueError(f"{len(wavs)} waveforms but {len(texts)} texts")
        out: list[float] = []
        for i in range(0, len(wavs), batch_size):
            log_probs, lens = self.encode(*self.wav_to_mel(wavs[i : i + batch_size], sample_rate))
            ids = [self.tokenizer.encode(t) for t in texts[i : i + batch_size]]
            tl = torch.tensor([len(x) for x in ids], dtype=torch.long)
            flat = torch.tensor([j for x in ids for j in x], dtype=torch.long)
            nll = F.ctc_loss(log_probs.transpose(0, 1), flat, lens, tl, blank=0, reduction="none")  # (B,)
            for n, t in zip(nll.tolist(), tl.tolist(), strict=True):
                out.append(n / t if t > 0 and math.isfinite(n) else math.inf)
        return out


def asr_conf_dict(config: CTCASRConfig) -> dict[str, Any]:
    """The full config as plain types (``model_conf`` of ``model.pt`` and ``config.yaml``)."""
    d = dataclasses.asdict(config)
    for k in ("tempo_range", "noise_snr_db"):
        d[k] = list(d[k])
    return d
