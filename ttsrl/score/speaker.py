"""Speaker similarity: cosine between utterance embeddings of synthesized audio and its prompt.

==============  ==========================================================================
backend         model
==============  ==========================================================================
resemblyzer     (default) the GE2E d-vector encoder whose weights ship inside the
                ``resemblyzer`` package; 256-dim, L2-normalized utterance embeddings.
ecapa           the Seed-TTS-Eval model (WavLM-large + ECAPA-TDNN) from a local checkpoint.
                Not available yet: it needs the WavLM and ECAPA-TDNN network code, which
                ttsrl does not ship (see :class:`SpeakerSim`).
==============  ==========================================================================

Usage::

    from ttsrl.score.speaker import SpeakerSim

    sim = SpeakerSim()                                  # resemblyzer on CPU
    sim.similarity(generated_wav, 16000, prompt_wav, 24000)   # float in [-1, 1]
    e = sim.embed(wav, sr)                              # (256,) unit vector
    SpeakerSim.cosine(e1, e2)
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ttsrl.score.asr import JudgeUnavailable

SIM_BACKENDS = ("resemblyzer", "ecapa")

# resemblyzer trims long pauses with a VAD; on very short audio that can leave almost
# nothing, so below this many samples (16 kHz) the untrimmed audio is embedded instead.
_MIN_TRIMMED = 1600


class SpeakerSim:
    """Utterance embeddings and their cosine similarity.

    Args:
        backend: ``"resemblyzer"`` or ``"ecapa"``.
        checkpoint: local checkpoint of the ``ecapa`` backend.
        device: torch device.
    """

    def __init__(self, backend: str = "resemblyzer", checkpoint: str | None = None, device: str = "cpu"):
        if backend not in SIM_BACKENDS:
            raise ValueError(
                f"unknown speaker similarity backend {backend!r} (choose from {', '.join(SIM_BACKENDS)})"
            )
        self.backend = backend
        if backend == "ecapa":
            self._unavailable_ecapa(checkpoint)
        with warnings.catch_warnings():  # resemblyzer imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            try:
                from resemblyzer import VoiceEncoder, audio
            except ImportError:
                raise JudgeUnavailable(
                    "speaker similarity needs the 'resemblyzer' package (pip install resemblyzer; "
                    "its encoder weights ship inside the package)"
                ) from None
        self._audio = audio
        self.sample_rate = int(audio.sampling_rate)
        self.encoder = VoiceEncoder(device=device, verbose=False)  # loads the bundled pretrained.pt

    @staticmethod
    def _unavailable_ecapa(checkpoint: str | None) -> None:
        if not checkpoint:
            raise JudgeUnavailable("the ecapa backend needs a local checkpoint (--sim_path)")
        if not os.path.exists(checkpoint):
            raise FileNotFoundError(f"ecapa checkpoint not found: {checkpoint}")
        raise JudgeUnavailable(
            "the ecapa speaker-similarity backend is not available in ttsrl yet. Scoring with the "
            "Seed-TTS-Eval checkpoint (wavlm_large_finetune.pth) needs: (1) the WavLM-large network "
            "definition the checkpoint's feature extractor was saved from (UniSpeech/s3prl WavLM), "
            "(2) the ECAPA-TDNN speaker head (UniSpeech downstreams/speaker_verification), and "
            "(3) a key mapping from the checkpoint into them. Use --sim resemblyzer meanwhile."
        )

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """Unit-norm utterance embedding (256,) of ``wav`` (float, mono, any rate)."""
        from ttsrl.score.asr import resample

        x = resample(wav, sr, self.sample_rate)
        if x.size == 0:
            raise ValueError("cannot embed empty audio")
        x = self._audio.normalize_volume(x, self._audio.audio_norm_target_dBFS, increase_only=True)
        trimmed = self._audio.trim_long_silences(x)
        if trimmed.size >= _MIN_TRIMMED:
            x = trimmed
        return np.asarray(self.encoder.embed_utterance(x.astype(np.float32)), dtype=np.float32)

    @staticmethod
    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        if na == 0.0 or nb == 0.0:
            return 0.0
        return float(np.dot(a, b) / (na * nb))

    def similarity(self, wav: np.ndarray, sr: int, ref: np.ndarray, ref_sr: int) -> float:
        """Cosine similarity of the embeddings of ``wav`` and ``ref``."""
        return self.cosine(self.embed(wav, sr), self.embed(ref, ref_sr))


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Equal-error rate (fraction) of verification trials and its threshold.

    ``scores`` (N,) similarities and ``same`` (N,) bool (target trial: one speaker). At threshold
    ``t`` a trial is accepted when its score is >= t; the false-rejection rate (targets below t)
    rises and the false-acceptance rate (non-targets at or above t) falls as t grows. The EER is
    where they cross, linearly interpolated between the two thresholds around the crossing."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    n_t, n_n = int(same.sum()), int((~same).sum())
    if n_t == 0 or n_n == 0:
        raise ValueError(f"the EER needs target and non-target trials ({n_t} and {n_n} given)")
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order]
    # threshold just above s[k]: trials 0..k rejected
    frr = np.concatenate([[0.0], np.cumsum(y) / n_t])  # (N + 1,) thresholds: below all, then above each
    far = np.concatenate([[1.0], 1.0 - np.cumsum(~y) / n_n])
    thresholds = np.concatenate([[s[0]], s])
    k = int(np.argmax(frr >= far))  # the first threshold where the rejections catch up
    if k == 0:
        return 0.0, float(thresholds[0])
    d0, d1 = far[k - 1] - frr[k - 1], frr[k] - far[k]  # both >= 0
    w = d0 / (d0 + d1) if d0 + d1 > 0 else 0.0
    eer = (1 - w) * (frr[k - 1] + far[k - 1]) / 2 + w * (frr[k] + far[k]) / 2
    return float(eer), float((1 - w) * thresholds[k - 1] + w * thresholds[k])


def trial_scores(emb: np.ndarray, labels: list) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores and same-speaker flags of every pair i < j of unit embeddings ``emb`` (N, D)."""
    emb = np.asarray(emb, dtype=np.float64)
    sims = emb @ emb.T
    i, j = np.triu_indices(len(emb), k=1)
    labels = np.asarray(labels)
    return sims[i, j], labels[i] == labels[j]
