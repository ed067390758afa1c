"""Vocoders: Griffin-Lim inverts the mel of a tone; Vocos shapes, lengths and training; the factory."""
import numpy as np
import pytest
import torch

from ttsrl.feats.mel import MelExtractor
from ttsrl.models.vocoder import (
    GriffinLim,
    VocosConfig,
    VocosVocoder,
    build_vocoder,
    multi_resolution_stft_loss,
)

SR = 16000
TINY = dict(dim=32, n_layers=2, intermediate_dim=64)


def tone(freq=440.0, seconds=0.5, amp=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return torch.tensor(amp * np.sin(2 * np.pi * freq * t), dtype=torch.float32)


def test_griffin_lim_inverts_a_tone():
    mel_fn = MelExtractor()
    mel, mel_lens = mel_fn(tone().unsqueeze(0))
    wav, wav_lens = GriffinLim().mel_to_wav(mel, mel_lens)
    assert wav.shape == (1, (mel.shape[-1] - 1) * 160) and wav_lens.tolist() == [wav.shape[1]]
    spec = np.abs(np.fft.rfft(wav[0].numpy()))
    peak = np.argmax(spec) * SR / wav.shape[1]
    assert abs(peak - 440.0) < 10.0
    mel_hat, _ = mel_fn(wav, wav_lens)
    assert (mel_hat - mel).abs().mean() < 0.4  # natural-log mel


def test_griffin_lim_batch_lengths_and_determinism():
    x = torch.zeros(2, 8000)
    x[0] = tone(300, 0.5)
    x[1, :4800] = tone(600, 0.3)
    mel, mel_lens = MelExtractor()(x, torch.tensor([8000, 4800]))
    gl = GriffinLim(n_iter=4)
    a, lens = gl.mel_to_wav(mel, mel_lens)
    b, _ = gl.mel_to_wav(mel, mel_lens)
    assert lens.tolist() == [(51 - 1) * 160, (31 - 1) * 160]
    assert torch.equal(a, b) and (a[1, lens[1]:] == 0).all()


def test_vocos_shapes_and_lengths():
    model = VocosVocoder(VocosConfig(**TINY)).eval()
    mel = torch.randn(2, 80, 13)
    wav, lens = model.mel_to_wav(mel, torch.tensor([13, 9]))
    assert wav.shape == (2, 12 * 160) and lens.tolist() == [12 * 160, 8 * 160]
    assert (wav[1, 8 * 160:] == 0).all()
    out = model(torch.randn(2, 3200) * 0.1, torch.tensor([3200, 2000]))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and set(out.stats) == {"sc", "log_mag", "mel_l1"}


def test_stft_loss_is_zero_for_identical_signals():
    y = torch.randn(1, 4000)
    sc, mag = multi_resolution_stft_loss(y, y, [(512, 128), (256, 64)])
    assert sc.item() == pytest.approx(0.0, abs=1e-6) and mag.item() == pytest.approx(0.0, abs=1e-6)


def test_vocos_loss_decreases_on_a_toy_wav():
    torch.manual_seed(0)
    model = VocosVocoder(VocosConfig(**TINY))
    noise = 0.01 * torch.randn(3200, generator=torch.Generator().manual_seed(0))
    wav = (tone(220, 0.2) + 0.5 * tone(660, 0.2) + noise).unsqueeze(0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(60):
        out = model(wav)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5]), losses


def test_mel_prior_starts_near_the_target():
    """The log-magnitude residual over the mel spread to STFT bins starts with a better mel loss."""
    wav = (tone(220, 0.2) + 0.01 * torch.randn(3200, generator=torch.Generator().manual_seed(0))).unsqueeze(0)
    losses = {}
    for prior in (True, False):
        torch.manual_seed(0)
        losses[prior] = VocosVocoder(VocosConfig(**TINY, mel_prior=prior))(wav).stats["mel_l1"].item()
    assert losses[True] < 0.8 * losses[False], losses  # on speech: 0.8 vs 2.3


def test_build_vocoder(tmp_path):
    assert isinstance(build_vocoder("griffin_lim", n_iter=8), GriffinLim)
    with pytest.raises(ValueError, match="unknown vocoder"):
        build_vocoder("hifigan")
    with pytest.raises(ValueError, match="path"):
        build_vocoder("vocos")
    model = VocosVocoder(VocosConfig(**TINY))
    torch.save({"model": model.state_dict(), "config": {"model_conf": {**TINY, "stft_resolutions": [512, 128]}}},
               tmp_path / "model.pt")
    loaded = build_vocoder("vocos", str(tmp_path / "model.pt"))
    mel = torch.randn(1, 80, 5)
    assert torch.equal(loaded.mel_to_wav(mel)[0], model.eval().mel_to_wav(mel)[0])
