#!/usr/bin/env python3
"""Signal processing of the mini_en corpus: spectral tilt (emotion styles) and the quality
degradations named in ``speakers.DEGRADATIONS``.

Every function takes and returns float32 mono audio in [-1, 1]; randomness comes only
from the ``numpy.random.Generator`` passed in, so a seeded generator gives the same bytes.

Usage::

    python local/degrade.py --degrade pink_snr10 clean.wav noisy.wav

    from degrade import degrade, high_shelf
    y = high_shelf(x, 22050, gain_db=8.0)          # brighter
    y = degrade(x, 16000, "pink_snr10", np.random.default_rng(0))
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import fft as sfft
from scipy import signal

SHELF_HZ = 1500.0
CLIP_FRACTION = 0.08  # share of samples above the clipping threshold
PEAK = 0.95  # peak level kept after an effect that may overshoot


def high_shelf(x: np.ndarray, sr: int, gain_db: float, f0: float = SHELF_HZ) -> np.ndarray:
    """RBJ-cookbook high-shelf biquad (slope 1): ``gain_db`` above ``f0``, 0 dB below."""
    if gain_db == 0:
        return x
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / sr
    cos_w0, alpha = math.cos(w0), math.sin(w0) / 2 * math.sqrt(2)
    sq = 2 * math.sqrt(a) * alpha
    b = [a * ((a + 1) + (a - 1) * cos_w0 + sq), -2 * a * ((a - 1) + (a + 1) * cos_w0),
         a * ((a + 1) + (a - 1) * cos_w0 - sq)]  # fmt: skip
    den = [(a + 1) - (a - 1) * cos_w0 + sq, 2 * ((a - 1) - (a + 1) * cos_w0), (a + 1) - (a - 1) * cos_w0 - sq]
    return signal.lfilter(np.array(b) / den[0], np.array(den) / den[0], x).astype(np.float32)


def limit_peak(x: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale down (never up) so that max |x| <= peak."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (peak / m)).astype(np.float32) if m > peak else x


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance 1/f noise: white noise shaped by 1/sqrt(f) in the frequency domain."""
    m = sfft.next_fast_len(n)  # an FFT size with small prime factors, then trimmed
    spec = sfft.rfft(rng.standard_normal(m))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    y = sfft.irfft(spec / np.sqrt(f), m)[:n]
    return (y / (np.std(y) + 1e-12)).astype(np.float32)


def make_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """White or pink noise at ``snr_db`` below the power of the active speech in ``x``
    (samples within 40 dB of the peak)."""
    active = x[np.abs(x) > np.max(np.abs(x)) * 0.01] if x.size else x
    p_sig = float(np.mean(active.astype(np.float64) ** 2)) if active.size else 0.0
    if color == "white":
        noise = rng.standard_normal(len(x)).astype(np.float32)
    elif color == "pink":
        noise = pink_noise(len(x), rng)
    else:
        raise ValueError(f"unknown noise color '{color}'")
    return (noise * math.sqrt(p_sig / 10 ** (snr_db / 10))).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """``x`` plus noise at ``snr_db`` (:func:`make_noise`), peak kept below full scale."""
    return limit_peak(x + make_noise(x, snr_db, rng, color))


def clip(x: np.ndarray, fraction: float = CLIP_FRACTION) -> np.ndarray:
    """Hard-clip the loudest ``fraction`` of samples, then bring the level back up
    (as a recording made with too much input gain)."""
    if not x.size:
        return x
    thr = float(np.quantile(np.abs(x), 1 - fraction))
    if thr <= 0:
        return x
    y = np.clip(x, -thr, thr)
    return (y * (PEAK / thr)).astype(np.float32)


def lowpass(x: np.ndarray, sr: int, cutoff: float = 4000.0) -> np.ndarray:
    """8th-order Butterworth low-pass (zero phase)."""
    sos = signal.butter(8, cutoff, btype="low", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, x).astype(np.float32)


def degrade(x: np.ndarray, sr: int, name: str, rng: np.random.Generator) -> np.ndarray:
    """Apply the degradation ``name`` (``clean``, ``noise_snr10``, ``pink_snr5``, ``clip``,
    ``lowpass4k``, ``clip_noise_snr5``, ...)."""
    if name == "clean":
        return x
    if name == "lowpass4k":
        return lowpass(x, sr, 4000.0)
    if name == "clip":
        return clip(x)
    if name.startswith("clip_"):
        return degrade(clip(x), sr, name[len("clip_") :], rng)
    for color, prefix in (("white", "noise_snr"), ("pink", "pink_snr")):
        if name.startswith(prefix):
            return add_noise(x, float(name[len(prefix) :]), rng, color)
    raise ValueError(f"unknown degradation '{name}'")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Apply one mini_en degradation to a wav file.")
    parser.add_argument("--degrade", required=True, help="noise_snr10, pink_snr5, clip, lowpass4k, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("input")
    parser.add_argument("output")
    args = parser.parse_args(argv)
    import soundfile as sf

    x, sr = sf.read(args.input, dtype="float32", always_2d=True)
    y = degrade(x.mean(axis=1), sr, args.degrade, np.random.default_rng(args.seed))
    sf.write(args.output, y, sr, subtype="PCM_16")


if __name__ == "__main__":
    main()
