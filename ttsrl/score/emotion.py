"""The judge-side emotion classifier: audio in, emotion out (stage 9's ``emo`` metrics).

It is trained on ground-truth audio only and shares nothing with the reward model (whose
emotion head reads speech tokens), so an aligned model that learned to please the reward's
emotion head is scored by a different model.

Features of one utterance (:func:`emotion_features`), all from the audio:

- mean, standard deviation and mean absolute frame-to-frame change of each log-mel bin over
  the speech frames (frames within 50 dB of the utterance's loudest frame);
- mean, standard deviation and 10-90 % range of ln F0 over voiced frames (pyworld DIO) and the
  voiced share of the speech frames.

The classifier is a multinomial logistic regression on standardized features (scikit-learn
for fitting; prediction needs numpy only). It is saved as one ``.npz`` (labels, scaler,
weights, the mel configuration).

Usage::

    from ttsrl.score.emotion import EmotionJudge

    judge = EmotionJudge.fit(feats, labels)          # feats (N, F) from emotion_features
    judge.save("exp/emotion_judge/model.npz")
    judge = EmotionJudge.load("exp/emotion_judge/model.npz")
    judge.predict_wavs([wav], 16000)                 # ["happy"]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import torch

from ttsrl.feats.f0 import compute_f0
from ttsrl.feats.mel import MelConfig, MelExtractor
from ttsrl.score.asr import JUDGE_SAMPLE_RATE, resample
from ttsrl.utils.fileio import atomic_path

SPEECH_RANGE_DB = 50.0  # frames quieter than the loudest one by more than this are not speech
_LN10_OVER_20 = np.log(10.0) / 20.0  # dB -> natural-log magnitude


def emotion_features(wav: np.ndarray, sr: int, mel: MelExtractor | None = None,
                     f0: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The feature vector ``(3 * n_mels + 4,)`` float32 of one utterance (see the module doc).

    ``f0``: the ``compute_f0`` track of the 16 kHz audio when the caller already has it.
    """
    x = resample(np.asarray(wav, dtype=np.float32).reshape(-1), sr, JUDGE_SAMPLE_RATE)
    if x.size < 400:  # under 25 ms there is nothing to classify
        raise ValueError(f"emotion_features: {x.size} samples at {JUDGE_SAMPLE_RATE} Hz is too short")
    mel = mel or MelExtractor(MelConfig(sample_rate=JUDGE_SAMPLE_RATE))
    with torch.no_grad():
        logmel = mel(torch.from_numpy(x)[None])[0][0].numpy().astype(np.float64)  # (n_mels, T)
    frame_level = logmel.max(0)
    speech = frame_level >= frame_level.max() - SPEECH_RANGE_DB * _LN10_OVER_20
    m = logmel[:, speech]
    delta = np.abs(np.diff(m, axis=1)).mean(1) if m.shape[1] > 1 else np.zeros(m.shape[0])
    f0, voiced = f0 or compute_f0(x, JUDGE_SAMPLE_RATE, hop_length=mel.config.hop_length)
    n = min(len(voiced), len(speech))
    voiced = voiced[:n] & speech[:n]
    if voiced.sum() >= 2:
        lf0 = np.log(f0[:n][voiced])
        pitch = [lf0.mean(), lf0.std(), np.percentile(lf0, 90) - np.percentile(lf0, 10)]
    else:  # no measurable pitch: the training set's unvoiced value
        pitch = [0.0, 0.0, 0.0]
    share = voiced.sum() / max(int(speech[:n].sum()), 1)
    return np.concatenate([m.mean(1), m.std(1), delta, pitch, [share]]).astype(np.float32)


class EmotionJudge:
    """Standardize, then a linear softmax over the emotion labels."""

    def __init__(self, labels: Sequence[str], mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray, mel_config: MelConfig | None = None):
        self.labels = list(labels)
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.coef, self.intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64)
        if self.coef.shape != (len(self.labels), self.mean.size):
            raise ValueError(f"EmotionJudge: coef {self.coef.shape} does not match {len(self.labels)} labels "
                             f"x {self.mean.size} features")
        self.mel = MelExtractor(mel_config or MelConfig(sample_rate=JUDGE_SAMPLE_RATE))

    @classmethod
    def fit(cls, feats: np.ndarray, labels: Sequence[str], c: float = 1.0, seed: int = 0) -> EmotionJudge:
        """Fits the scaler and the logistic regression on ``feats`` (N, F) and their labels."""
        from sklearn.linear_model import LogisticRegression

        names = sorted(set(labels))
        if len(names) < 2:
            raise ValueError(f"EmotionJudge.fit: need at least two emotions, got {names}")
        feats = np.asarray(feats, np.float64)
        mean, scale = feats.mean(0), feats.std(0)
        scale[scale < 1e-8] = 1.0
        y = np.array([names.index(lab) for lab in labels])
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit((feats - mean) / scale, y)
        coef, intercept = clf.coef_, clf.intercept_
        if len(names) == 2:  # scikit-learn keeps one row for two classes: make it a softmax over both
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls(names, mean, scale, coef, intercept)

    def probs(self, feats: np.ndarray) -> np.ndarray:
        """(N, n_labels) class probabilities of feature rows (N, F)."""
        z = ((np.asarray(feats, np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, feats: np.ndarray) -> list[str]:
        return [self.labels[i] for i in self.probs(feats).argmax(1)]

    def predict_wavs(self, wavs: Sequence[np.ndarray], sr: int) -> list[str]:
        return self.predict(np.stack([emotion_features(w, sr, self.mel) for w in wavs]))

    def save(self, path: str) -> None:
        arrays = dict(labels=np.array(self.labels), mean=self.mean, scale=self.scale, coef=self.coef,
                      intercept=self.intercept, mel_config=np.array(repr(asdict(self.mel.config))))
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str) -> EmotionJudge:
        """A judge saved by :meth:`save`; ``path`` may be its folder (``model.npz`` inside)."""
        if os.path.isdir(path):
            path = os.path.join(path, "model.npz")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"emotion judge not found: {path} (train it: python -m ttsrl.bin.train_emotion_judge)")
        import ast

        z = np.load(path, allow_pickle=False)
        mel_config = MelConfig(**ast.literal_eval(str(z["mel_config"])))
        return cls([str(s) for s in z["labels"]], z["mean"], z["scale"], z["coef"], z["intercept"], mel_config)
