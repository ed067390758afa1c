"""A tiny valid data directory made of sine tones, for tests and smoke runs.

Usage::

    from ttsrl.data.toy import make_toy_data_dir

    path = make_toy_data_dir(tmp_path / "data")   # 3 speakers x 2 utterances, 16 kHz, 0.2 s

gives ``wav.scp`` (wavs under ``<path>/wav/``), ``text``, ``utt2spk``, ``spk2utt`` and
the labels ``utt2gender``, ``utt2emo``, ``utt2dur``. Utterance ids are
``spk<i>-utt<j>``, speakers ``spk<i>``.
"""

from __future__ import annotations

import os

import numpy as np

from ttsrl.data.audio import write_wav
from ttsrl.data.datadir import DataDir

_WORDS = ("hello world", "good morning", "the cat sat", "a quick test", "blue sky", "one two three")
_EMOS = ("neutral", "happy", "sad")


def make_toy_data_dir(
    path: str | os.PathLike,
    num_spk: int = 3,
    utts_per_spk: int = 2,
    sample_rate: int = 16000,
    duration: float = 0.2,
    labels: bool = True,
    seed: int = 0,
) -> str:
    """Write the toy directory to ``path`` (created) and return ``path`` as a string."""
    path = os.fspath(path)
    rng = np.random.default_rng(seed)
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    d = DataDir()
    gender, emo, dur = {}, {}, {}
    for s in range(1, num_spk + 1):
        for u in range(1, utts_per_spk + 1):
            utt = f"spk{s}-utt{u}"
            wav = 0.3 * np.sin(2 * np.pi * (110 * s + 40 * u) * t) + 0.01 * rng.standard_normal(n)
            wav_path = os.path.abspath(os.path.join(path, "wav", f"{utt}.wav"))
            write_wav(wav_path, wav, sample_rate)
            d.wav_scp[utt] = wav_path
            d.text[utt] = _WORDS[(s * utts_per_spk + u) % len(_WORDS)]
            d.utt2spk[utt] = f"spk{s}"
            gender[utt] = "m" if s % 2 else "f"
            emo[utt] = _EMOS[u % len(_EMOS)]
            dur[utt] = f"{n / sample_rate:.3f}"
    if labels:
        d.labels = {"utt2gender": gender, "utt2emo": emo, "utt2dur": dur}
    d.write(path)
    return path
