"""Supervised semantic speech tokenizer: log-mel -> encoder -> FSQ tokens -> CTC text head + mel head.

In the spirit of CosyVoice's supervised tokenizer (Du et al. 2024): the tokens are trained
to carry *what was said* by a CTC text recognizer that sees only the quantized vectors,
and to keep enough of the acoustics for a mel reconstruction head::

    mel (B, T, 80) --GlobalMVN--> --Conv1dSubsampling x4--> (B, T', D)  [100 -> 25 frames/s]
        --Encoder--> --Linear--> (B, T', d) --FSQ--> codes (B, T', d), tokens (B, T')
    codes --Linear, Encoder, Linear to ctc_upsample frames--> CTC log-probs over the char list
    codes --Linear, Encoder, upsample x4, Linear--> normalized mel (B, 4 T', 80)
        [+ global_dim > 0: a vector pooled from the whole utterance's mel, added at the head's input]

    loss = ctc (summed over the batch / target characters) + recon_weight * L1(mel, normalized mel)
           [+ enc_ctc_weight * ctc of an auxiliary head on the encoder output, before the quantizer]

The CTC head emits ``ctc_upsample`` frames per token: fast espeak-ng speech reaches about 20
characters per second, close to the 25 tokens/s, and CTC needs a frame per character plus
one between repeated characters. (Its layers run at the token rate; only the output
projection splits each token into frames, which keeps the head cheap.)

With ``global_dim > 0`` the mel head also reads an utterance-level vector: a convolutional
front end and one encoder layer over the utterance's mel, mean-pooled over its frames
(a global style token in the spirit of Wang et al. 2018). What is constant over the
utterance (the voice, the channel and noise, the style's average pitch and energy) then
need not be carried by the codes, which keep what changes in time: what is said and how
it is timed. The codes lose entropy the codec LM would otherwise have to guess; the flow
model brings the voice back from the zero-shot prompt, as CosyVoice's does. The vector is
used in training only (``encode`` returns the tokens alone).

The model holds the global mean/variance normalization (buffers in its state dict) and
the mel configuration (in its config), so ``encode_wav`` works on any audio, including
generated audio. A trained tokenizer directory (``ttsrl.bin.train_tokenizer``) is
self-contained: ``model.pt`` (weights + resolved config with ``model_conf``),
``config.yaml``, ``tokens.txt`` (the CTC character list), ``stats.npz``, ``metrics.json``.

Usage::

    from ttsrl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig

    model = SpeechTokenizer(SpeechTokenizerConfig(vocab_size=40))
    out = model(mel, mel_lens, text, text_lens)       # mel (B, T, 80) raw log-mel; out.loss
    tok = SpeechTokenizer.from_pretrained("exp/tokenizer")          # eval mode, on the CPU
    tokens, token_lens = tok.encode(mel, mel_lens)    # (B, T') int64 in [0, codebook_size)
    tokens, token_lens = tok.encode_wav(wav, 16000)   # wav (T,) or (B, T) [+ wav_lens]
    codes = tok.embed_tokens(tokens)                  # (B, T', len(fsq_levels)) quantized vectors
    ids = tok.ctc_decode(tokens, token_lens)          # [[char ids], ...] greedy CTC
    load_ctc_tokenizer("exp/tokenizer").decode(ids[0])  # 'the transcription'
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ttsrl.feats.augment import spec_augment
from ttsrl.feats.mel import MelConfig, MelExtractor
from ttsrl.feats.stats import GlobalMVN
from ttsrl.models.ctc import ctc_loss_per_unit, greedy_ctc
from ttsrl.models.modules import Conv1dSubsampling, Encoder, LinearUpsample, lengths_to_mask
from ttsrl.models.quantizer import FSQ
from ttsrl.utils.checkpoint import load_checkpoint, load_model
from ttsrl.utils.config import Registry, build_dataclass

logger = logging.getLogger(__name__)

__all__ = [
    "SPEECH_TOKENIZERS",
    "SpeechTokenizer",
    "SpeechTokenizerConfig",
    "TokenizerOutput",
    "char_errors",
    "codebook_stats",
    "compute_loss",
    "edit_distance",
    "greedy_ctc",
    "load_ctc_tokenizer",
]

SPEECH_TOKENIZERS = Registry("speech_tokenizer")


@dataclass
class SpeechTokenizerConfig:
    vocab_size: int = 0  # CTC vocabulary = the text token list (0 = <blank>); set from tokens.txt
    mel: MelConfig = field(default_factory=MelConfig)  # features the model expects (and computes in encode_wav)
    d_model: int = 256
    n_heads: int = 4
    d_ff: int = 1024
    n_layers: int = 4  # encoder layers before the quantizer (at the token rate)
    conv_kernel: int = 15  # conformer convolution kernel; 0 = plain transformer layers
    position: str = "abs"  # positions in every encoder: abs (sinusoidal), rope or none
    subsample: int = 4  # mel frames per token (100 -> 25 frames/s)
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # codebook = product (1000)
    ctc_layers: int = 2
    ctc_upsample: int = 2  # CTC output frames per token
    recon_layers: int = 2
    recon_weight: float = 1.0
    global_dim: int = 0  # >0: the mel head reads an utterance-level vector of this size (pooled from the mel)
    enc_ctc_weight: float = 0.0  # >0: an auxiliary CTC head on the encoder output, before the quantizer
    dropout: float = 0.1
    # SpecAugment (Park et al. 2019) of the encoder input in training; the mel target stays clean
    freq_masks: int = 0  # bands per utterance, each up to freq_mask_width mel bins
    freq_mask_width: int = 10
    time_masks: int = 0  # spans per utterance, each up to time_mask_width frames
    time_mask_width: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.mel, Mapping):
            self.mel = build_dataclass(MelConfig, self.mel, "SpeechTokenizerConfig.mel")
        self.fsq_levels = tuple(int(v) for v in self.fsq_levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def token_rate(self) -> float:
        """Tokens per second."""
        return self.mel.frame_rate / self.subsample


@dataclass
class TokenizerOutput:
    loss: torch.Tensor  # ctc_loss + recon_weight * recon_loss (ctc_loss is 0 without text)
    ctc_loss: torch.Tensor  # summed CTC loss / target characters
    enc_ctc_loss: torch.Tensor  # the same for the auxiliary head on the encoder (0 without it)
    recon_loss: torch.Tensor  # L1 over valid frames and mel bins (normalized mel)
    tokens: torch.Tensor  # (B, T') int64
    token_lens: torch.Tensor  # (B,)
    ctc_log_probs: torch.Tensor  # (B, T' * ctc_upsample, V)
    ctc_lens: torch.Tensor  # (B,)
    recon: torch.Tensor  # (B, T' * subsample, n_mels) normalized mel prediction


@SPEECH_TOKENIZERS.register("fsq_ctc")
class SpeechTokenizer(nn.Module):
    def __init__(self, config: SpeechTokenizerConfig):
        super().__init__()
        c = self.config = config
        if c.vocab_size < 3:
            raise ValueError(
                f"SpeechTokenizerConfig.vocab_size={c.vocab_size}: set it to the size of the CTC token list"
            )
        n_mels = c.mel.n_mels
        self.mel_extractor = MelExtractor(c.mel)  # no persistent buffers: rebuilt from config.mel
        self.mvn = GlobalMVN(dim=n_mels)  # identity until stats are set (set_stats) or a state dict is loaded
        self.subsampling = Conv1dSubsampling(n_mels, c.d_model, c.subsample, dropout=c.dropout)
        self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.conv_kernel, c.dropout, c.position)
        self.fsq = FSQ(c.fsq_levels)
        self.pre_quant = nn.Linear(c.d_model, self.fsq.dim)
        # auxiliary CTC on the continuous encoder output (intermediate CTC): the encoder learns
        # phonetic features quickly, the quantized head then only has to keep them
        k = max(c.ctc_upsample, 1)
        self.enc_ctc_out = LinearUpsample(c.d_model, c.vocab_size, k) if c.enc_ctc_weight > 0 else None
        # CTC text head over the quantized vectors
        self.ctc_in = nn.Linear(self.fsq.dim, c.d_model)
        self.ctc_encoder = Encoder(c.d_model, c.ctc_layers, c.n_heads, c.d_ff, c.conv_kernel, c.dropout, c.position)
        self.ctc_out = LinearUpsample(c.d_model, c.vocab_size, max(c.ctc_upsample, 1))  # k output frames per token
        # mel reconstruction head
        self.recon_in = nn.Linear(self.fsq.dim, c.d_model)
        self.recon_encoder = Encoder(
            c.d_model, c.recon_layers, c.n_heads, c.d_ff, c.conv_kernel, c.dropout, c.position
        )
        self.recon_out = LinearUpsample(c.d_model, n_mels, c.subsample)
        if c.global_dim > 0:  # utterance-level vector of the mel head (see the module docstring)
            self.global_subsampling = Conv1dSubsampling(n_mels, c.d_model, c.subsample, dropout=c.dropout)
            self.global_encoder = Encoder(c.d_model, 1, c.n_heads, c.d_ff, c.conv_kernel, c.dropout, c.position)
            self.global_out = nn.Linear(c.d_model, c.global_dim)
            self.global_in = nn.Linear(c.global_dim, c.d_model)
        else:
            self.global_subsampling = self.global_encoder = self.global_out = self.global_in = None

    # ------------------------------------------------------------------ setup / loading
    def set_stats(self, stats: str | os.PathLike | GlobalMVN) -> None:
        """Use the global mean/std of ``stats`` (a ``stats.npz`` or a GlobalMVN) to normalize mels."""
        self.mvn.set_stats(stats)

    @property
    def codebook_size(self) -> int:
        return self.fsq.codebook_size

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SpeechTokenizer:
        """Load ``<path>/model.pt`` (or the file ``path``) written by the tokenizer trainer; eval mode."""
        return load_model(path, cls, SpeechTokenizerConfig, "speech tokenizer", device)

    # ------------------------------------------------------------------ core
    def _encode(self, mel: torch.Tensor, mel_lens: torch.Tensor):
        if mel.dim() != 3 or mel.shape[-1] != self.config.mel.n_mels:
            raise ValueError(f"expected mel (B, T, {self.config.mel.n_mels}), got {tuple(mel.shape)}")
        mel_lens = mel_lens.to(mel.device).clamp(min=1)
        x = self.mvn(mel)
        if self.training:
            c = self.config
            x = spec_augment(x, mel_lens, c.freq_masks, c.freq_mask_width, c.time_masks, c.time_mask_width)
        h, lens = self.subsampling(x, mel_lens)  # (B, T', D)
        h = self.encoder(h, lens)
        codes, tokens = self.fsq(self.pre_quant(h))  # (B, T', d), (B, T')
        valid = lengths_to_mask(lens, h.shape[1])
        return h, codes * valid[..., None], tokens.masked_fill(~valid, 0), lens

    def quantize(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw log-mel ``(B, T, n_mels)`` -> codes ``(B, T', d)``, tokens ``(B, T')``, lengths ``(B,)``."""
        return self._encode(mel, mel_lens)[1:]

    def _ctc_head(self, codes: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.ctc_encoder(self.ctc_in(codes), lens)  # (B, T', D)
        logits = self.ctc_out(h)  # (B, T' * k, V)
        return F.log_softmax(logits.float(), dim=-1), lens * self.ctc_out.factor

    def utterance_vector(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> torch.Tensor:
        """Normalized mel ``(B, T, n_mels)`` -> the mel head's utterance-level vector ``(B, global_dim)``."""
        h, lens = self.global_subsampling(mel, mel_lens)  # (B, T', D)
        h = self.global_encoder(h, lens)  # zero at padded frames
        return self.global_out(h.sum(1) / lens[:, None].to(h.dtype))  # mean over the valid frames

    def _recon_head(self, codes: torch.Tensor, lens: torch.Tensor, utt_vec: torch.Tensor | None = None) -> torch.Tensor:
        x = self.recon_in(codes)  # (B, T', D)
        if utt_vec is not None:
            x = x + self.global_in(utt_vec)[:, None, :]
        h = self.recon_encoder(x, lens)
        return self.recon_out(h)  # (B, T' * subsample, n_mels)

    def forward(
        self,
        mel: torch.Tensor,
        mel_lens: torch.Tensor,
        text: torch.Tensor | None = None,
        text_lens: torch.Tensor | None = None,
    ) -> TokenizerOutput:
        """mel ``(B, T, n_mels)`` raw log-mel, text ``(B, L)`` char ids (no blank), lengths ``(B,)``."""
        mel_lens = mel_lens.to(mel.device).clamp(min=1)
        h, codes, tokens, lens = self._encode(mel, mel_lens)
        log_probs, ctc_lens = self._ctc_head(codes, lens)
        # L1 to the normalized mel over the valid frames (4 T' >= T: the extra frames are ignored)
        T = mel.shape[1]
        target = self.mvn(mel)
        utt_vec = self.utterance_vector(target, mel_lens) if self.global_in is not None else None
        recon = self._recon_head(codes, lens, utt_vec)
        frame_mask = lengths_to_mask(mel_lens, T)[..., None].to(recon.dtype)  # (B, T, 1)
        recon_loss = ((recon[:, :T] - target).abs() * frame_mask).sum() / (frame_mask.sum() * mel.shape[-1])
        ctc_loss = enc_ctc_loss = recon_loss.new_zeros(())
        if text is not None:
            assert text_lens is not None, "text needs text_lens"
            text_lens = text_lens.to(mel.device)
            ctc_loss = ctc_loss_per_unit(log_probs, ctc_lens, text, text_lens)
            if self.enc_ctc_out is not None:
                enc_log_probs = F.log_softmax(self.enc_ctc_out(h).float(), dim=-1)
                enc_ctc_loss = ctc_loss_per_unit(enc_log_probs, ctc_lens, text, text_lens)
        c = self.config
        loss = ctc_loss + c.enc_ctc_weight * enc_ctc_loss + c.recon_weight * recon_loss
        return TokenizerOutput(loss, ctc_loss, enc_ctc_loss, recon_loss, tokens, lens, log_probs, ctc_lens, recon)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode(self, mel: torch.Tensor, mel_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw log-mel ``(B, T, n_mels)`` -> tokens ``(B, T')`` (0 past each length) and lengths ``(B,)``.

        Deterministic in eval mode (call ``.eval()``; :meth:`from_pretrained` does).
        """
        if mel_lens is None:
            mel_lens = torch.full((mel.shape[0],), mel.shape[1], dtype=torch.long, device=mel.device)
        _, tokens, lens = self.quantize(mel, mel_lens)
        return tokens, lens

    def wav_to_mel(
        self, wav: Any, sample_rate: int | None = None, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveform(s) ``(T,)`` or ``(B, T)`` (numpy or torch) -> raw log-mel ``(B, T_frames, n_mels)``, lengths.

        Audio at another ``sample_rate`` is resampled (soxr, on the CPU) to the model's rate.
        """
        device = self.mvn.mean.device
        wav = torch.as_tensor(np.asarray(wav, dtype=np.float32) if not torch.is_tensor(wav) else wav)
        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2:
            raise ValueError(f"expected a waveform (T,) or (B, T), got shape {tuple(wav.shape)}")
        if wav_lens is None:
            wav_lens = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
        wav_lens = torch.as_tensor(wav_lens, dtype=torch.long)
        target_sr = self.config.mel.sample_rate
        if sample_rate is not None and sample_rate != target_sr:
            import soxr

            rows = [
                soxr.resample(w[: int(n)].detach().float().cpu().numpy(), sample_rate, target_sr, quality="HQ")
                for w, n in zip(wav, wav_lens, strict=True)
            ]
            wav_lens = torch.tensor([len(r) for r in rows], dtype=torch.long)
            wav = torch.zeros(len(rows), int(wav_lens.max()))
            for i, r in enumerate(rows):
                wav[i, : len(r)] = torch.from_numpy(np.ascontiguousarray(r, dtype=np.float32))
        mel, mel_lens = self.mel_extractor(wav.to(device=device, dtype=torch.float32), wav_lens.to(device))
        return mel.transpose(1, 2), mel_lens  # (B, T, n_mels)

    @torch.no_grad()
    def encode_wav(
        self, wav: Any, sample_rate: int | None = None, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveform(s) -> tokens ``(B, T')`` and lengths ``(B,)``; see :meth:`wav_to_mel`."""
        mel, mel_lens = self.wav_to_mel(wav, sample_rate, wav_lens)
        return self.encode(mel, mel_lens)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``(...,)`` -> their quantized vectors ``(..., len(fsq_levels))`` in [-1, 1]."""
        return self.fsq.indices_to_codes(tokens.to(self.mvn.mean.device))

    def ctc_log_probs(self, tokens: torch.Tensor, token_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probs ``(B, T' * ctc_upsample, V)`` and lengths of the text head reading ``tokens``."""
        tokens = tokens.to(self.mvn.mean.device)
        token_lens = token_lens.to(tokens.device).clamp(min=1)
        valid = lengths_to_mask(token_lens, tokens.shape[1])
        codes = self.embed_tokens(tokens.masked_fill(~valid, 0)) * valid[..., None]
        return self._ctc_head(codes, token_lens)

    def mel_ctc_log_probs(self, mel: torch.Tensor, mel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw log-mel ``(B, T, n_mels)`` -> the text head's CTC log-probs and lengths, differentiable in
        ``mel`` (the quantizer passes gradients straight through): a recognizer on mel (DMO's CTC loss)."""
        _, codes, _, lens = self._encode(mel, mel_lens)
        return self._ctc_head(codes, lens)

    @torch.no_grad()
    def ctc_decode(self, tokens: torch.Tensor, token_lens: torch.Tensor) -> list[list[int]]:
        """Greedy CTC transcription (char ids, blanks and repeats removed) of speech tokens."""
        log_probs, lens = self.ctc_log_probs(tokens, token_lens)
        return greedy_ctc(log_probs, lens)


def load_ctc_tokenizer(path: str | os.PathLike):
    """The text tokenizer of a tokenizer directory's CTC head (``tokens.txt``, ``bpe.model`` for
    BPE units, and the saved ``token_type``).

    ``ctc_tok.decode(model.ctc_decode(tokens, lens)[0])`` is the transcription as text.
    """
    from ttsrl.text.tokenizer import build_tokenizer

    path = Path(path)
    ckpt = load_checkpoint(path / "model.pt")
    token_type = (ckpt.get("config") or {}).get("token_type", "char")
    bpemodel = path / "bpe.model" if token_type == "bpe" else None
    return build_tokenizer(token_type, path / "tokens.txt", bpemodel=bpemodel)


# --------------------------------------------------------------------------- training and metrics


def edit_distance(ref: Sequence[Any], hyp: Sequence[Any]) -> int:
    """Levenshtein distance (substitutions, deletions, insertions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def codebook_stats(counts: np.ndarray) -> dict[str, float]:
    """``codebook_perplexity`` (exp of the entropy of code usage) and ``codebook_usage`` (share of codes used)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return {"codebook_perplexity": 0.0, "codebook_usage": 0.0}
    p = counts[counts > 0] / total
    return {
        "codebook_perplexity": float(np.exp(-(p * np.log(p)).sum())),
        "codebook_usage": float((counts > 0).mean()),
    }


def char_errors(refs: Sequence[Sequence[int]], hyps: Sequence[Sequence[int]],
                decode: Callable[[Sequence[int]], str] | None = None) -> tuple[int, int]:
    """Character edits and reference characters of token-id hypotheses against references.

    With ``decode`` (ids -> text, e.g. a text tokenizer's ``decode``) the texts are
    compared character by character, so the rate is a CER whatever the units (chars,
    BPE pieces); without it the id sequences are compared (the CER of char units).
    """
    errors = chars = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        if decode is not None:
            ref, hyp = decode(ref), decode(hyp)
        errors += edit_distance(ref, hyp)
        chars += len(ref)
    return errors, chars


def unit_error_rates(refs: Sequence[Sequence[int]], hyps: Sequence[Sequence[int]]) -> list[float]:
    """Per row: edit distance of the id sequences / reference length (the CER of char units; may exceed 1).

    An empty reference reads 0 against an empty hypothesis and 1 against anything else.
    """
    return [edit_distance(r, h) / len(r) if len(r) else float(len(h) > 0)
            for r, h in zip(refs, hyps, strict=True)]


def compute_loss(
    model: nn.Module, batch: Mapping[str, Any], decode: Callable[[Sequence[int]], str] | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The Trainer's loss on a batch of ``{feats, feats_lens, text, text_lens}``.

    In eval mode (validation) it also reports the greedy CTC character error rate ``cer``
    (percent; see :func:`char_errors` for ``decode``). Stats are weighted by target units,
    so ``cer`` averages over batches close to the corpus CER.
    """
    out: TokenizerOutput = model(batch["feats"], batch["feats_lens"], batch["text"], batch["text_lens"])
    stats: dict[str, Any] = {
        "loss": out.loss.detach(),
        "ctc": out.ctc_loss.detach(),
        "enc_ctc": out.enc_ctc_loss.detach(),
        "recon": out.recon_loss.detach(),
        "weight": batch["text_lens"].sum(),
    }
    if not model.training:
        refs = [r[: int(n)] for r, n in zip(batch["text"].tolist(), batch["text_lens"].tolist(), strict=True)]
        errors, chars = char_errors(refs, greedy_ctc(out.ctc_log_probs, out.ctc_lens), decode)
        stats["cer"] = 100.0 * errors / max(chars, 1)
    return out.loss, stats


@torch.no_grad()
def evaluate_tokens(
    model: SpeechTokenizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, list[list[int]] | None]],
    decode: Callable[[Sequence[int]], str] | None = None,
) -> dict[str, float]:
    """Codebook usage and CTC CER of the tokens of ``(tokens (B, T'), token_lens, refs or None)`` batches.

    Returns ``codebook_perplexity``, ``codebook_usage``, ``num_tokens`` and, when references
    (CTC unit ids) are given, ``ctc_cer`` (percent: character edits of the greedy
    transcription / reference characters; see :func:`char_errors` for ``decode``).
    """
    counts = np.zeros(model.codebook_size, dtype=np.int64)
    errors = chars = 0
    have_refs = False
    for tokens, lens, refs in batches:
        valid = lengths_to_mask(lens.to(tokens.device), tokens.shape[1])
        counts += np.bincount(tokens[valid].cpu().numpy(), minlength=model.codebook_size)
        if refs is not None:
            have_refs = True
            e, n = char_errors(refs, model.ctc_decode(tokens, lens), decode)
            errors, chars = errors + e, chars + n
    stats = codebook_stats(counts)
    stats["num_tokens"] = int(counts.sum())
    if have_refs:
        stats["ctc_cer"] = 100.0 * errors / max(chars, 1)
    return stats


def model_conf_dict(config: SpeechTokenizerConfig) -> dict[str, Any]:
    """The full config as plain types (what ``model.pt`` and ``config.yaml`` store as ``model_conf``)."""
    d = dataclasses.asdict(config)
    d["fsq_levels"] = list(config.fsq_levels)
    return d
