"""F0 (pyworld), F0 variance and frame energy at the mel frame rate.

F0 frames are centered on samples ``t * hop_length`` like the mel frames of
:mod:`ttsrl.feats.mel`, so an utterance of ``N`` samples has ``N // hop_length + 1``
F0 values, one per mel frame.

Two pyworld estimators:

- ``"dio"`` (default): DIO + StoneMask refinement. Fast (about 100x real time on one
  core), what reward scoring of many candidates needs.
- ``"harvest"``: more robust voicing on real speech, about 20x slower; it also
  rejects perfectly periodic synthetic tones as unvoiced.

**F0 variance** (the expressiveness reward of ARDM-DPO) is computed here as the variance
of the *natural log* of F0 over voiced frames, in (ln Hz)^2. On a log scale the same
intonation gives the same value for low and high voices (a 10 % pitch movement is the
same at 100 Hz and 250 Hz); ``log=False`` gives the variance in Hz^2 instead. With fewer
than ``min_voiced`` voiced frames the value is 0.0 (no measurable intonation).

Usage::

    from ttsrl.feats.f0 import compute_energy, compute_f0, f0_variance, interpolate_f0

    f0, voiced = compute_f0(wav, 16000)           # (T_frames,) Hz (0 when unvoiced), bool
    f0_variance(wav, 16000)                      # float, var of ln F0 over voiced frames
    lf0 = np.log(interpolate_f0(f0, voiced))      # continuous log-F0 for a variance adaptor
    energy = compute_energy(wav)                 # (T_frames,) L2 norm of each STFT frame
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ttsrl.feats.mel import MelConfig, MelExtractor

F0_METHODS = ("dio", "harvest")


def _pyworld():
    with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        import pyworld

    return pyworld


def compute_f0(
    wav: np.ndarray,
    sample_rate: int,
    hop_length: int = 160,
    method: str = "dio",
    f0_floor: float = 50.0,
    f0_ceil: float = 800.0,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz ``(T_frames,)`` float32 (0 where unvoiced) and the voiced mask (bool).

    ``T_frames == len(wav) // hop_length + 1``, the mel frame count.
    """
    if method not in F0_METHODS:
        raise ValueError(f"compute_f0: unknown method {method!r} (choose from {F0_METHODS})")
    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float64).reshape(-1))
    if x.size == 0:
        raise ValueError("compute_f0: empty waveform")
    pw = _pyworld()
    frame_period = 1000.0 * hop_length / sample_rate  # ms
    if method == "dio":
        f0, t = pw.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
        f0 = pw.stonemask(x, f0, t, sample_rate)
    else:
        f0, _ = pw.harvest(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period)
    n = x.size // hop_length + 1
    f0 = np.pad(f0[:n], (0, max(0, n - f0.size))).astype(np.float32)
    voiced = f0 > 0
    return f0, voiced


def f0_variance(
    wav: np.ndarray,
    sample_rate: int,
    log: bool = True,
    hop_length: int = 160,
    method: str = "dio",
    f0_floor: float = 50.0,
    f0_ceil: float = 800.0,
    min_voiced: int = 2,
) -> float:
    """Variance of ln F0 (``log=True``, (ln Hz)^2) or of F0 (Hz^2) over voiced frames;
    0.0 when fewer than ``min_voiced`` frames are voiced. See the module docstring."""
    f0, voiced = compute_f0(
        wav, sample_rate, hop_length=hop_length, method=method, f0_floor=f0_floor, f0_ceil=f0_ceil
    )
    return f0_variance_from_f0(f0, voiced, log=log, min_voiced=min_voiced)


def f0_variance_from_f0(f0: np.ndarray, voiced: np.ndarray, log: bool = True, min_voiced: int = 2) -> float:
    """:func:`f0_variance` from an F0 track already computed."""
    v = np.asarray(f0, dtype=np.float64)[np.asarray(voiced, dtype=bool)]
    if v.size < max(min_voiced, 1):
        return 0.0
    return float(np.var(np.log(v) if log else v))


def interpolate_f0(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Continuous F0: unvoiced frames linearly interpolated between voiced neighbours and
    held flat at the ends. All-unvoiced input is returned as zeros."""
    f0 = np.asarray(f0, dtype=np.float32)
    voiced = np.asarray(voiced, dtype=bool)
    if not voiced.any():
        return np.zeros_like(f0)
    idx = np.arange(f0.size)
    return np.interp(idx, idx[voiced], f0[voiced]).astype(np.float32)


_ENERGY_EXTRACTORS: dict[tuple, MelExtractor] = {}


def compute_energy(wav: np.ndarray, config: MelConfig | None = None) -> np.ndarray:
    """Per-frame energy ``(T_frames,)`` float32: the L2 norm of the linear STFT magnitude
    of each frame (FastSpeech 2), framed exactly like the mel of ``config``."""
    config = config or MelConfig()
    key = tuple(sorted(config.to_dict().items()))
    if key not in _ENERGY_EXTRACTORS:
        _ENERGY_EXTRACTORS[key] = MelExtractor(config)
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32).reshape(1, -1))
    with torch.no_grad():
        mag, _ = _ENERGY_EXTRACTORS[key].magnitude(x)  # (1, F, T_frames)
    return mag[0].norm(dim=0).numpy()
