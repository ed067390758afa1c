"""ASR judges: the models that transcribe synthesized audio for WER/CER.

Every judge has one method, ``transcribe(wavs, sr) -> list[str]``, and is built by name::

    from ttsrl.score.asr import build_asr_judge

    judge = build_asr_judge("pocketsphinx")                       # en-us model inside the wheel
    judge = build_asr_judge("whisper", path="/models/whisper-large-v3", language="en")
    texts = judge.transcribe([wav1, wav2], sr=16000)              # wavs: (T,) float arrays

==============  ==========================================================================
name            model
==============  ==========================================================================
pocketsphinx    CMU PocketSphinx with the en-us acoustic model, language model and
                dictionary that ship in the ``pocketsphinx`` wheel: an independent second
                opinion on English audio, no weights to fetch.
whisper         Whisper from a **local** checkpoint only: a transformers model folder
                (``config.json`` ...) or an openai-whisper ``.pt`` file. Nothing is
                downloaded; a missing path or package is a clear error.
ctc             the corpus' own CTC character ASR (``ttsrl.bin.train_asr``, ``path=
                "exp/judge/model.pt"``), trained on ground-truth audio only; also gives
                the CTC NLL per character of the intended text (``ctc_nll``).
==============  ==========================================================================

A judge is never one of the reward models used for training. New judges register with
:func:`register_asr_judge`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

JUDGE_SAMPLE_RATE = 16000


class JudgeUnavailable(RuntimeError):
    """A judge cannot be built here (missing package or checkpoint); the message says what to provide."""


def resample(wav: np.ndarray, sr: int, target: int = JUDGE_SAMPLE_RATE) -> np.ndarray:
    """Float32 mono at ``target`` Hz (soxr, high quality)."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if sr == target or wav.size == 0:
        return wav
    import soxr

    return soxr.resample(wav, sr, target, quality="HQ").astype(np.float32, copy=False)


class ASRJudge:
    """Base class: ``transcribe(wavs, sr)`` returns one raw transcript per waveform."""

    name = "base"

    def transcribe(self, wavs: Sequence[np.ndarray], sr: int) -> list[str]:
        raise NotImplementedError


ASR_JUDGES: dict[str, Callable[..., ASRJudge]] = {}


def register_asr_judge(name: str) -> Callable[[type[ASRJudge]], type[ASRJudge]]:
    """Class decorator adding a judge to :data:`ASR_JUDGES` under ``name``."""

    def deco(cls: type[ASRJudge]) -> type[ASRJudge]:
        if name in ASR_JUDGES:
            raise ValueError(f"ASR judge {name!r} is registered twice")
        cls.name = name
        ASR_JUDGES[name] = cls
        return cls

    return deco


def build_asr_judge(name: str, **kwargs) -> ASRJudge:
    """Build the judge registered as ``name`` with its keyword options."""
    if name not in ASR_JUDGES:
        raise ValueError(f"unknown ASR judge {name!r} (choose from {', '.join(sorted(ASR_JUDGES))})")
    return ASR_JUDGES[name](**kwargs)


@register_asr_judge("pocketsphinx")
class PocketSphinxJudge(ASRJudge):
    """PocketSphinx 5 decoding of 16 kHz 16-bit audio with the bundled en-us model.

    Before decoding, each waveform is scaled to a fixed RMS level, padded with ``pad``
    seconds of silence on both sides and given a Gaussian noise floor ``snr_db`` below its
    level. Synthesized audio often holds exact digital silence: frames of zero energy pull
    PocketSphinx's cepstral mean normalization far off and ruin the whole utterance
    (on 20 espeak-ng sentences: 91 % WER without the floor, 15 % with it). The noise is drawn from
    a fixed seed per utterance, so transcripts are deterministic and independent of batching.

    Args:
        hmm, lm, dictionary: another acoustic model folder, language model and dictionary
            (default: the en-us files inside the wheel).
        snr_db: noise floor below the signal RMS, in dB (``None``: no floor).
        pad: seconds of silence added before and after the audio.
    """

    def __init__(
        self,
        hmm: str | None = None,
        lm: str | None = None,
        dictionary: str | None = None,
        snr_db: float | None = 30.0,
        pad: float = 0.3,
        seed: int = 0,
    ):
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise JudgeUnavailable(
                "the pocketsphinx judge needs the 'pocketsphinx' package (pip install pocketsphinx; "
                "its en-us model ships inside the wheel)"
            ) from None
        config = {"samprate": JUDGE_SAMPLE_RATE, "loglevel": "FATAL"}
        for key, value in (("hmm", hmm), ("lm", lm), ("dict", dictionary)):
            if value is not None:
                if not os.path.exists(value):
                    raise FileNotFoundError(f"pocketsphinx {key} not found: {value}")
                config[key] = value
        self.decoder = Decoder(**config)
        self.snr_db, self.pad, self.seed = snr_db, pad, seed

    def _prepare(self, wav: np.ndarray) -> bytes:
        rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0
        level = 0.1  # -20 dBFS: room for peaks before int16 clipping
        if rms > 0:
            wav = wav * (level / rms)
        pad = np.zeros(int(self.pad * JUDGE_SAMPLE_RATE), dtype=np.float32)
        wav = np.concatenate([pad, wav.astype(np.float32), pad])
        if self.snr_db is not None:
            rng = np.random.default_rng(self.seed)
            wav = wav + (level * 10 ** (-self.snr_db / 20)) * rng.standard_normal(wav.size).astype(np.float32)
        return (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    def transcribe(self, wavs: Sequence[np.ndarray], sr: int) -> list[str]:
        out = []
        for wav in wavs:
            self.decoder.start_utt()
            self.decoder.process_raw(self._prepare(resample(wav, sr)), full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            out.append(hyp.hypstr.strip() if hyp is not None else "")
        return out


@register_asr_judge("whisper")
class WhisperJudge(ASRJudge):
    """Whisper from a local checkpoint (Seed-TTS-Eval's English judge is whisper-large-v3).

    ``path`` is a transformers model folder (``config.json``, weights, tokenizer and
    preprocessor files, as ``save_pretrained`` writes them) or an openai-whisper ``.pt``
    checkpoint file. It is loaded with ``local_files_only``: nothing is downloaded.

    Args:
        path: the local checkpoint (required).
        language: the spoken language given to the decoder (``"en"``, ``"zh"`` ...).
        device: torch device.
        batch_size: utterances per generate call (transformers backend).
    """

    def __init__(
        self, path: str | None = None, language: str = "en", device: str = "cpu", batch_size: int = 8
    ):
        if not path:
            raise JudgeUnavailable(
                "the whisper judge needs a local checkpoint (--judge_path): a transformers Whisper folder "
                "or an openai-whisper .pt file; it is never downloaded"
            )
        if not os.path.exists(path):
            raise FileNotFoundError(f"whisper checkpoint not found: {path}")
        self.path, self.language, self.device, self.batch_size = path, language, device, batch_size
        if os.path.isdir(path):
            self._load_transformers(path)
        else:
            self._load_openai(path)

    def _load_transformers(self, path: str) -> None:
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise JudgeUnavailable(f"{path}: not a transformers Whisper folder (no config.json)")
        try:
            from transformers import WhisperForConditionalGeneration, WhisperProcessor
        except ImportError:
            raise JudgeUnavailable(
                f"{path} is a transformers checkpoint; the whisper judge then needs 'transformers' "
                "(pip install transformers)"
            ) from None
        self.backend = "transformers"
        self.processor = WhisperProcessor.from_pretrained(path, local_files_only=True)
        self.model = WhisperForConditionalGeneration.from_pretrained(path, local_files_only=True)
        self.model.to(self.device).eval()

    def _load_openai(self, path: str) -> None:
        try:
            import whisper
        except ImportError:
            raise JudgeUnavailable(
                f"{path} is an openai-whisper checkpoint file; the whisper judge then needs 'openai-whisper' "
                "(pip install openai-whisper), or give a transformers Whisper folder instead"
            ) from None
        self.backend = "openai-whisper"
        self.model = whisper.load_model(path, device=self.device)  # a file path: loaded, never fetched

    def transcribe(self, wavs: Sequence[np.ndarray], sr: int) -> list[str]:
        wavs16 = [resample(w, sr) for w in wavs]
        if self.backend == "openai-whisper":
            return [
                self.model.transcribe(w, language=self.language, task="transcribe", fp16=False)[
                    "text"
                ].strip()
                for w in wavs16
            ]
        import torch

        out: list[str] = []
        for i in range(0, len(wavs16), self.batch_size):
            chunk = wavs16[i : i + self.batch_size]
            feats = self.processor(chunk, sampling_rate=JUDGE_SAMPLE_RATE, return_tensors="pt").input_features
            with torch.no_grad():
                ids = self.model.generate(feats.to(self.device), language=self.language, task="transcribe")
            out.extend(t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True))
        return out


@register_asr_judge("ctc")
class CTCJudge(ASRJudge):
    """The corpus' own CTC character ASR (``ttsrl.bin.train_asr``, stage 9), greedy decoding.

    Trained only on ground-truth audio, never a reward model. Besides transcripts it gives
    :meth:`ctc_nll`, the CTC negative log-likelihood of the intended text per character
    (ARDM-DPO's robustness metric; the scorer's ``nll``).

    Args:
        path: ``model.pt`` or the folder holding it (e.g. ``exp/judge``) (required).
        device: torch device.
        batch_size: utterances per forward pass.
    """

    def __init__(self, path: str | None = None, device: str = "cpu", batch_size: int = 16):
        if not path:
            raise JudgeUnavailable(
                "the ctc judge needs the model trained by ttsrl.bin.train_asr (--judge_path exp/judge/model.pt)"
            )
        if not os.path.exists(path):
            raise FileNotFoundError(f"ctc judge model not found: {path}")
        from ttsrl.models.asr import CTCASR

        self.model = CTCASR.from_pretrained(path, device=device)
        self.batch_size = batch_size

    def transcribe(self, wavs: Sequence[np.ndarray], sr: int) -> list[str]:
        return self.model.transcribe_wav(list(wavs), sr, batch_size=self.batch_size)

    def ctc_nll(self, wavs: Sequence[np.ndarray], sr: int, texts: Sequence[str]) -> list[float]:
        """CTC negative log-likelihood of each intended text per character (lower: clearer speech)."""
        return self.model.ctc_nll(list(wavs), sr, list(texts), batch_size=self.batch_size)
