"""ttsrl.feats.mel: shapes, padded batches, librosa reference, gradients."""

import librosa
import numpy as np
import pytest
import torch

from ttsrl.feats.mel import MelConfig, MelExtractor, mel_filterbank, reflect_indices

SR = 16000


def signal(n, seed=0, f=220.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def librosa_log_mel(y, c: MelConfig):
    mel = librosa.feature.melspectrogram(
        y=y, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length, window="hann",
        center=True, pad_mode="reflect", power=c.power, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=False,
        norm="slaney",
    )  # fmt: skip
    return np.log(np.maximum(mel, c.log_floor))


def test_defaults_give_100_fps():
    c = MelConfig()
    assert (c.sample_rate, c.n_fft, c.win_length, c.hop_length, c.n_mels, c.fmax) == (
        16000,
        1024,
        640,
        160,
        80,
        8000,
    )
    assert c.frame_rate == 100.0 and c.num_frames(16000) == 101


@pytest.mark.parametrize(
    "config", [MelConfig(), MelConfig(n_fft=512, win_length=400, hop_length=200, n_mels=40, power=2.0)]
)
def test_matches_librosa(config):
    y = signal(12345)
    ours = MelExtractor(config).compute(y)  # (T, n_mels)
    ref = librosa_log_mel(y, config).T
    assert ours.shape == ref.shape == (config.num_frames(len(y)), config.n_mels)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_padded_batch_equals_single_utterances():
    m = MelExtractor()
    lens = [12345, 5000, 300]  # the last is shorter than n_fft // 2: reflected repeatedly
    wav = torch.zeros(len(lens), max(lens))
    ys = [signal(n, seed=i) for i, n in enumerate(lens)]
    for i, y in enumerate(ys):
        wav[i, : len(y)] = torch.from_numpy(y)
    mel, mel_lens = m(wav, torch.tensor(lens))
    assert mel.shape == (3, 80, lens[0] // 160 + 1)
    assert mel_lens.tolist() == [n // 160 + 1 for n in lens]
    for i, y in enumerate(ys):
        n = mel_lens[i]
        np.testing.assert_allclose(mel[i, :, :n].numpy(), m.compute(y).T, atol=1e-4, rtol=0)
        assert torch.all(mel[i, :, n:] == np.log(1e-5))  # padding frames are "silence"
    # without lengths every row is full length
    assert m(wav)[1].tolist() == [lens[0] // 160 + 1] * 3


def test_reflect_indices_match_numpy_pad():
    for n in (1, 2, 5, 17):
        idx = reflect_indices(torch.tensor([n]), n + 2 * 4, 4)[0].numpy()
        expected = np.pad(np.arange(n), 4, mode="reflect") if n > 4 else None
        if expected is not None:
            np.testing.assert_array_equal(idx, expected)
        assert idx.min() >= 0 and idx.max() <= n - 1


def test_gradient_reaches_waveform():
    m = MelExtractor()
    wav = torch.from_numpy(np.stack([signal(8000), np.zeros(8000, np.float32)])).requires_grad_(True)
    mel, _ = m(wav, torch.tensor([8000, 4000]))
    mel.mean().backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all()
    assert wav.grad[0].abs().sum() > 0


def test_device_and_dtype_follow_module():
    m = MelExtractor().double()
    mel, _ = m(torch.from_numpy(signal(3200)).double().unsqueeze(0))
    assert mel.dtype == torch.float64
    assert "mel_basis" not in m.state_dict()  # config constants are not checkpointed


def test_bad_inputs():
    m = MelExtractor()
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        m(torch.zeros(100))
    with pytest.raises(ValueError, match="empty"):
        m(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="win_length"):
        MelConfig(win_length=2048)


@pytest.mark.parametrize(
    "args", [(16000, 1024, 80, 0.0, 8000.0), (22050, 1024, 80, 0.0, None), (24000, 512, 100, 50.0, 11000.0)]
)
def test_filterbank_equals_librosa(args):
    sr, n_fft, n_mels, fmin, fmax = args
    ref = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    )
    np.testing.assert_allclose(mel_filterbank(sr, n_fft, n_mels, fmin, fmax), ref, rtol=1e-5, atol=1e-8)
