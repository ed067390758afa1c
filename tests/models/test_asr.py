"""The CTC judge ASR: shapes, padding independence, greedy decoding, augmentation, CTC NLL."""

import math

import numpy as np
import pytest
import torch

from ttsrl.models.asr import CTCASR, CTCASRConfig, greedy_ctc
from ttsrl.text.tokenizer import build_token_list

TEXTS = ["hello world", "good morning"]


def tiny(**kw):
    conf = dict(token_list=build_token_list("char", TEXTS), d_model=32, n_heads=2, d_ff=64, n_layers=1,
                conv_kernel=3, dropout=0.0)
    conf.update(kw)
    return CTCASR(CTCASRConfig(**conf))


def test_shapes_and_loss():
    torch.manual_seed(0)
    model = tiny(tempo_prob=0.0)  # a tempo change would alter the lengths
    mel = torch.randn(2, 50, 80)
    lens = torch.tensor([50, 37])
    text = torch.tensor([[3, 4, 5], [6, 7, 0]])
    out = model(mel, lens, text, torch.tensor([3, 2]))
    V = model.config.vocab_size
    assert out.log_probs.shape == (2, 26, V)  # ceil(50 / 4) * 2
    assert out.lens.tolist() == [26, 20]  # ceil(37 / 4) * 2
    assert torch.isfinite(out.loss) and out.loss > 0
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(2, 26), atol=1e-4)
    out.loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_padding_independence():
    torch.manual_seed(0)
    model = tiny(conv_kernel=5).eval()
    a, b = torch.randn(1, 40, 80), torch.randn(1, 64, 80)
    alone, n = model.encode(a, torch.tensor([40]))
    batch = torch.zeros(2, 64, 80)
    batch[0, :40], batch[1] = a[0], b[0]
    both, lens = model.encode(batch, torch.tensor([40, 64]))
    assert lens[0] == n[0]
    assert torch.allclose(alone[0, : n[0]], both[0, : n[0]], atol=1e-5)


def test_greedy_ctc():
    ids = [[0, 3, 3, 0, 3, 4, 4, 0, 0], [5, 5, 0, 0, 0, 0, 0, 0, 0]]
    lp = torch.log_softmax(torch.nn.functional.one_hot(torch.tensor(ids), 6).float() * 10, -1)
    assert greedy_ctc(lp, torch.tensor([9, 9])) == [[3, 3, 4], [5]]
    assert greedy_ctc(lp, torch.tensor([3, 1])) == [[3], [5]]  # frames past the length are ignored


def test_augmentation_only_in_training():
    torch.manual_seed(0)
    model = tiny(tempo_prob=1.0, noise_prob=1.0)
    mel = torch.randn(2, 60, 80) - 5
    lens = torch.tensor([60, 45])
    model.eval()
    a, _ = model.encode(mel, lens)
    b, _ = model.encode(mel, lens)
    assert torch.equal(a, b)
    model.train()
    aug, aug_lens = model.augment(mel, lens)
    assert aug.shape[0] == 2 and aug_lens.max() <= aug.shape[1]
    assert torch.isfinite(aug).all()


def _toy_wavs():
    """Two 0.8 s "utterances": sequences of 8 tones, so that frames differ along time."""
    sr = 16000
    t = np.arange(int(0.1 * sr)) / sr
    rng = np.random.default_rng(0)
    wavs = [np.concatenate([0.3 * np.sin(2 * np.pi * f * t) for f in rng.uniform(150, 4000, 8)]) for _ in range(2)]
    return [w.astype(np.float32) for w in wavs], sr


def test_ctc_nll_after_tiny_overfit():
    torch.manual_seed(0)
    model = tiny(time_masks=0, freq_masks=0, tempo_prob=0.0, noise_prob=0.0)
    wavs, sr = _toy_wavs()
    mel, mel_lens = model.wav_to_mel(wavs, sr)
    ids = [model.tokenizer.encode(t) for t in TEXTS]
    text = torch.zeros(2, max(map(len, ids)), dtype=torch.long)
    for i, x in enumerate(ids):
        text[i, : len(x)] = torch.tensor(x)
    text_lens = torch.tensor([len(x) for x in ids])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        loss = model(mel, mel_lens, text, text_lens).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    hyps = model.transcribe_wav(wavs, sr)
    assert len(hyps) == 2 and all(isinstance(h, str) for h in hyps)
    right = model.ctc_nll(wavs, sr, TEXTS)
    wrong = model.ctc_nll(wavs, sr, TEXTS[::-1])
    assert all(math.isfinite(v) and v >= 0 for v in right + wrong)
    assert right[0] < wrong[0] and right[1] < wrong[1]
    assert model.ctc_nll(wavs[0], sr, TEXTS[0])[0] == pytest.approx(right[0], rel=1e-4)  # batch independent
    assert model.ctc_nll(wavs[0], sr, "")[0] == math.inf
    assert isinstance(model.transcribe_wav(wavs[0], 22050)[0], str)  # resampled


def test_config_errors():
    with pytest.raises(ValueError, match="token_list"):
        CTCASR(CTCASRConfig())
