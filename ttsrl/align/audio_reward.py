"""Audio-level rewards: speech-token candidates -> flow + vocoder -> scorers that are not the judge.

:class:`AudioReward` has the interface of :class:`ttsrl.align.rewards.TokenReward`
(``score(tokens, ..., utts=...) -> {component: (B,), "reward": (B,)}``), so
:func:`ttsrl.align.rewards.score_samples_dir` writes the same ``rewards.tsv`` and
``ttsrl.bin.make_pairs`` builds pairs from either. Each candidate is synthesized with its
utterance's zero-shot prompt (the data dir's ``prompt.scp`` / ``prompt_text``), then scored:

==========  ==========================================================================
text        log p_CTC(text | audio) / text characters, from a *reward* ASR: the speech
            tokenizer's CTC head over the re-tokenized audio (``asr="tokenizer"``, the
            default) or a CTC ASR trained by ``ttsrl.bin.train_asr`` (a path). Never give
            the judge's model here: the judge scores what the reward trained.
            A text the audio cannot hold gets ``INFEASIBLE_LOGPROB`` per character.
sim         cosine speaker similarity of the audio to its prompt (resemblyzer)
f0v         variance of ln F0 over voiced frames (expressiveness; a weight may be negative)
dnsmos      DNSMOS P.835 overall MOS (speechmos)
==========  ==========================================================================

Only components with a non-zero weight are computed, except ``text`` (always; it is the
cheapest). This is what DiffRO avoids: ``bench/reward_cost.py`` measures the cost of this
path against the token-level reward on the same candidates.

Usage::

    from ttsrl.align.audio_reward import AudioReward
    from ttsrl.sample.synthesize import TTSPipeline

    tts = TTSPipeline.from_dirs(None, "exp/base/flow/model.pt", "exp/tokenizer")
    scorer = AudioReward(tts, "data/train_align", weights={"text": 1.0, "sim": 1.0})
    out = scorer.score([tok1, tok2], utts=["utt1", "utt1"])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ttsrl.data.audio import load_audio
from ttsrl.data.token_dataset import pad_1d
from ttsrl.models.ctc import greedy_ctc
from ttsrl.models.speech_tokenizer import unit_error_rates
from ttsrl.sample.synthesize import FlowOptions, TTSPipeline, UttError, read_requests

logger = logging.getLogger(__name__)

AUDIO_COMPONENTS: tuple[str, ...] = ("text", "sim", "f0v", "dnsmos")
INFEASIBLE_LOGPROB = -20.0  # text component of audio whose CTC frames cannot hold the text, per character


class AudioReward:
    """A weighted sum of audio-level components; see the module docstring.

    Args:
        tts: the pipeline whose flow and vocoder turn tokens into audio (its LM is not used).
        data_dir: the candidates' data dir (text, prompt.scp, prompt_text).
        weights: component weights; unnamed ones are 0 (default ``{"text": 1.0}``).
        asr: ``"tokenizer"`` or the ``model.pt`` of a ``ttsrl.bin.train_asr`` model (not the judge's).
        flow_opts: ODE steps, guidance and seed of the flow model.
        batch_size: utterances per ASR forward pass.
    """

    def __init__(self, tts: TTSPipeline, data_dir: str, weights: Mapping[str, float] | None = None,
                 asr: str = "tokenizer", flow_opts: FlowOptions | None = None, batch_size: int = 16):
        w = {**dict.fromkeys(AUDIO_COMPONENTS, 0.0), **(weights if weights is not None else {"text": 1.0})}
        unknown = sorted(set(w) - set(AUDIO_COMPONENTS))
        if unknown:
            raise ValueError(f"unknown audio reward components {unknown}; choose from {', '.join(AUDIO_COMPONENTS)}")
        self.weights = {k: float(v) for k, v in w.items()}
        self.tts, self.flow_opts, self.batch_size = tts, flow_opts or FlowOptions(), batch_size
        self.requests = {r.utt: r for r in read_requests(data_dir, None)}
        self._items: dict[str, dict] = {}
        self._prompt_wavs: dict[str, tuple[np.ndarray, int]] = {}
        self.asr = None
        if asr != "tokenizer":
            from ttsrl.models.asr import CTCASR

            self.asr = CTCASR.from_pretrained(asr, device=tts.device)
        self.speaker = self.dnsmos = None
        if self.weights["sim"]:
            from ttsrl.score.speaker import SpeakerSim

            self.speaker = SpeakerSim()
        if self.weights["dnsmos"]:
            from ttsrl.score.quality import DNSMOS

            self.dnsmos = DNSMOS()

    @property
    def needs_targets(self) -> list[str]:
        return []

    def _item(self, utt: str) -> dict:
        """The prepared request (text ids, prompt tokens and mel) of an utterance, with its text in the
        tokenizer's CTC units (``ctc_text``, what the tokenizer's CTC head scores), cached."""
        if utt not in self._items:
            if utt not in self.requests:
                raise UttError(f"utterance {utt!r} is not in the audio reward's data dir")
            req = self.requests[utt]
            self._items[utt] = {**self.tts.prepare(req), "ctc_text": self.tts.encode_text(utt, req.text, ctc=True)}
        return self._items[utt]

    def synthesize(self, tokens: Sequence[Any], utts: Sequence[str]) -> list[np.ndarray]:
        """Waveforms of the candidates (flow + vocoder with each utterance's prompt)."""
        items = [self._item(u) for u in utts]
        toks = [torch.as_tensor(np.asarray(t, dtype=np.int64)).reshape(-1) for t in tokens]
        toks = [t if len(t) else torch.zeros(1, dtype=torch.long) for t in toks]  # the flow needs >= 1 token
        return self.tts.tokens_to_wav(items, toks, self.flow_opts)

    @torch.no_grad()
    def text_logprob(self, wavs: Sequence[np.ndarray], utts: Sequence[str]) -> torch.Tensor:
        """log p_CTC(text | audio) per text character ``(B,)`` from the reward ASR."""
        return self.read_text(wavs, utts)[0]

    @torch.no_grad()
    def read_text(self, wavs: Sequence[np.ndarray], utts: Sequence[str],
                  cer: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`text_logprob` and, with ``cer``, the CER proxy ``(B,)`` of the same pass: the reward
        ASR's greedy transcript against the text, in its units (edits / text units)."""
        sr = self.tts.sample_rate
        if self.asr is not None:
            texts = [self.requests[u].text for u in utts]
            nll = self.asr.ctc_nll(list(wavs), sr, texts, self.batch_size)
            lp = torch.tensor([-n if math.isfinite(n) else INFEASIBLE_LOGPROB for n in nll])
            if not cer:
                return lp, None
            hyps = [self.asr.tokenizer.encode(h) for h in self.asr.transcribe_wav(list(wavs), sr, self.batch_size)]
            return lp, torch.tensor(unit_error_rates([self.asr.tokenizer.encode(t) for t in texts], hyps))
        tok = self.tts.tokenizer
        out, rates = [], []
        for b in range(0, len(wavs), self.batch_size):
            chunk, cu = wavs[b : b + self.batch_size], utts[b : b + self.batch_size]
            wav, wav_lens = pad_1d([torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for w in chunk])
            codes, lens = tok.encode(*tok.wav_to_mel(wav, sr, wav_lens))
            log_probs, lp_lens = tok.ctc_log_probs(codes, lens)
            refs = [self._item(u)["ctc_text"] for u in cu]
            text, text_lens = pad_1d([torch.tensor(r) for r in refs])
            nll = F.ctc_loss(log_probs.transpose(0, 1), text.to(log_probs.device), lp_lens, text_lens.to(lp_lens),
                             blank=0, reduction="none").cpu() / text_lens
            out.append(torch.where(torch.isfinite(nll), -nll, torch.full_like(nll, INFEASIBLE_LOGPROB)))
            if cer:
                rates += unit_error_rates([list(r) for r in refs], greedy_ctc(log_probs, lp_lens))
        return torch.cat(out), (torch.tensor(rates) if cer else None)

    def _prompt_wav(self, utt: str) -> tuple[np.ndarray, int] | None:
        path = self.requests[utt].prompt_wav
        if not path:
            return None
        if utt not in self._prompt_wavs:
            self._prompt_wavs[utt] = load_audio(path, None)
        return self._prompt_wavs[utt]

    def score(self, tokens: Sequence[Any], lens: torch.Tensor | None = None, text: Any = None,
              text_lens: torch.Tensor | None = None, targets: Mapping | None = None,
              utts: Sequence[str] | None = None, cer: bool = False) -> dict[str, torch.Tensor]:
        """Components and ``reward`` ``(B,)`` of a batch of candidates (id sequences).

        ``utts`` (required) name each candidate's utterance: its text and prompt come from
        the data dir. ``lens``/``text``/``targets`` are accepted for the token reward's
        interface; the texts are the data dir's. ``cer``: also ``out["cer"]`` ``(B,)``, the
        reward ASR's CER proxy (a rate, not a component; see :meth:`read_text`).
        """
        if utts is None:
            raise ValueError("the audio reward needs the utterance of every candidate (utts=...)")
        if torch.is_tensor(tokens) and tokens.dim() == 2:
            n = lens if lens is not None else [tokens.shape[1]] * tokens.shape[0]
            tokens = [t[: int(k)] for t, k in zip(tokens, n, strict=True)]
        if len(tokens) != len(utts):
            raise ValueError(f"{len(tokens)} candidates but {len(utts)} utterance ids")
        wavs = self.synthesize(tokens, utts)
        sr = self.tts.sample_rate
        text_lp, rates = self.read_text(wavs, utts, cer)
        out = {"text": text_lp}
        if self.speaker is not None:
            sims = []
            for w, u in zip(wavs, utts, strict=True):
                ref = self._prompt_wav(u)
                if ref is None:
                    raise UttError(f"utterance {u!r} has no prompt: the sim component needs one")
                sims.append(self.speaker.similarity(w, sr, *ref))
            out["sim"] = torch.tensor(sims)
        if self.weights["f0v"]:
            from ttsrl.score.quality import f0_variance

            out["f0v"] = torch.tensor([f0_variance(w, sr) for w in wavs])
        if self.dnsmos is not None:
            out["dnsmos"] = torch.tensor([self.dnsmos.score(w, sr)["ovrl"] for w in wavs])
        reward = torch.zeros(len(wavs))
        for c, w in self.weights.items():
            if w:
                reward = reward + w * out[c].float()
        out["reward"] = reward
        if rates is not None:
            out["cer"] = rates
        return out
