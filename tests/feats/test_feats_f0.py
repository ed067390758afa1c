"""ttsrl.feats.f0: F0 of tones and chirps, F0 variance, interpolation, energy."""

import numpy as np
import pytest

from ttsrl.feats.f0 import compute_energy, compute_f0, f0_variance, f0_variance_from_f0, interpolate_f0
from ttsrl.feats.mel import MelConfig, MelExtractor

SR = 16000


def tone(freq=200.0, seconds=1.0, amp=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(f_start=120.0, f_end=300.0, seconds=1.0):
    n = int(SR * seconds)
    freq = np.linspace(f_start, f_end, n)
    return (0.5 * np.sin(2 * np.pi * np.cumsum(freq) / SR)).astype(np.float32)


def test_tone_gives_its_frequency():
    wav = tone(200.0)
    f0, voiced = compute_f0(wav, SR)
    assert f0.shape == voiced.shape == (len(wav) // 160 + 1,)
    assert voiced.mean() > 0.9
    assert abs(np.median(f0[voiced]) - 200.0) < 2.0
    assert np.all(f0[~voiced] == 0)
    assert f0_variance(wav, SR) < 1e-3


def test_chirp_has_larger_variance():
    flat, moving = f0_variance(tone(200.0), SR), f0_variance(chirp(), SR)
    assert moving > 10 * flat
    # ln(300/120) spread: a linear chirp's log-F0 variance is of order 0.05
    assert 0.02 < moving < 0.2
    assert f0_variance(chirp(), SR, log=False) > f0_variance(tone(), SR, log=False)


@pytest.mark.parametrize("n", [100, 15999, 16000, 16161, 12345])
def test_frames_align_with_mel(n):
    wav = tone(150.0, seconds=n / SR)
    f0, _ = compute_f0(wav, SR)
    assert len(f0) == MelConfig().num_frames(n) == MelExtractor().compute(wav).shape[0]
    assert len(compute_energy(wav)) == len(f0)


def test_harvest_method_runs():
    f0, voiced = compute_f0(chirp(seconds=0.3), SR, method="harvest")
    assert f0.shape == voiced.shape == (0.3 * SR // 160 + 1,)
    with pytest.raises(ValueError, match="unknown method"):
        compute_f0(tone(), SR, method="yin")


def test_silence_and_too_few_voiced_frames():
    assert f0_variance(np.zeros(SR, dtype=np.float32), SR) == 0.0
    assert f0_variance_from_f0(np.array([0.0, 100.0, 0.0]), np.array([False, True, False])) == 0.0
    np.testing.assert_allclose(
        f0_variance_from_f0(np.array([100.0, 200.0]), np.array([True, True])), np.var(np.log([100.0, 200.0]))
    )


def test_interpolate_f0():
    f0 = np.array([0, 100, 0, 0, 160, 0], dtype=np.float32)
    out = interpolate_f0(f0, f0 > 0)
    np.testing.assert_allclose(out, [100, 100, 120, 140, 160, 160])
    assert np.all(interpolate_f0(np.zeros(3), np.zeros(3, bool)) == 0)


def test_energy_follows_amplitude():
    loud, quiet = compute_energy(tone(amp=0.5)), compute_energy(tone(amp=0.05))
    np.testing.assert_allclose(loud[5:-5] / quiet[5:-5], 10.0, rtol=1e-3)
    assert compute_energy(np.zeros(1600, dtype=np.float32)).max() == 0.0
