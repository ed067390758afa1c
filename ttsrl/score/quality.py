"""Reference-free per-utterance measures: DNSMOS quality and F0 variance (expressiveness).

- **DNSMOS** (P.835 SIG/BAK/OVRL and P.808 MOS, 1..5) runs the ONNX models that ship inside
  the ``speechmos`` package with onnxruntime on CPU. Audio is resampled to 16 kHz; clips
  shorter than the models' 9.01 s window are repeated to fill it (as DNSMOS does).
- **F0 variance** is :func:`ttsrl.feats.f0.f0_variance`: the variance of ln F0 over voiced
  frames (pyworld DIO), in (ln Hz)^2, the expressiveness measure of ARDM-DPO.

Usage::

    from ttsrl.score.quality import DNSMOS, f0_variance

    mos = DNSMOS()
    mos.score(wav, 24000)     # {"ovrl": 3.1, "sig": 3.4, "bak": 4.0, "p808": 3.6}
    f0_variance(wav, 24000)   # 0.021
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ttsrl.score.asr import JUDGE_SAMPLE_RATE, JudgeUnavailable, resample

DNSMOS_KEYS = ("ovrl", "sig", "bak", "p808")


class DNSMOS:
    """DNSMOS P.835 + P.808 from the ONNX files bundled with ``speechmos``."""

    def __init__(self, personalized: bool = False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from speechmos import dnsmos
        except ImportError:
            raise JudgeUnavailable(
                "DNSMOS needs 'speechmos' and 'onnxruntime' (pip install speechmos onnxruntime; "
                "the ONNX models ship inside speechmos)"
            ) from None
        root = os.path.dirname(os.path.abspath(dnsmos.__file__))
        primary = os.path.join(
            root, "pdnsmos_models" if personalized else "dnsmos_models", "sig_bak_ovr.onnx"
        )
        p808 = os.path.join(root, "dnsmos_models", "model_v8.onnx")
        for path in (primary, p808):
            if not os.path.isfile(path):
                raise JudgeUnavailable(f"DNSMOS model missing from the speechmos package: {path}")
        self.personalized = personalized
        self.model = dnsmos.DNSMOS(primary, p808)

    def score(self, wav: np.ndarray, sr: int) -> dict[str, float]:
        """``{"ovrl", "sig", "bak", "p808"}`` MOS values of one utterance."""
        x = resample(wav, sr, JUDGE_SAMPLE_RATE)
        if x.size == 0:
            raise ValueError("cannot rate empty audio")
        x = np.clip(x, -1.0, 1.0).astype(np.float32)
        out = self.model(x, JUDGE_SAMPLE_RATE, self.personalized)
        return {
            "ovrl": float(out["ovrl_mos"]),
            "sig": float(out["sig_mos"]),
            "bak": float(out["bak_mos"]),
            "p808": float(out["p808_mos"]),
        }


def f0_variance(wav: np.ndarray, sr: int) -> float:
    """Variance of ln F0 over voiced frames, (ln Hz)^2 (0.0 with fewer than 2 voiced frames)."""
    from ttsrl.feats.f0 import f0_variance as _f0_variance

    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise ValueError("cannot measure F0 of empty audio")
    return _f0_variance(x, sr)
