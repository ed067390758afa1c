"""SpeechTokenizer and its building blocks: shapes, loss, determinism, padding-independence, learning."""
import numpy as np
import pytest
import torch

from ttsrl.models.modules import Conv1dSubsampling, Encoder, lengths_to_mask
from ttsrl.models.speech_tokenizer import (
    SpeechTokenizer,
    SpeechTokenizerConfig,
    codebook_stats,
    compute_loss,
    edit_distance,
    greedy_ctc,
)

V = 12


def tiny(**kw):
    torch.manual_seed(0)
    conf = dict(vocab_size=V, d_model=32, n_heads=2, d_ff=64, n_layers=1, conv_kernel=3, ctc_layers=1,
                recon_layers=1, dropout=0.0)
    conf.update(kw)
    return SpeechTokenizer(SpeechTokenizerConfig(**conf))


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(3, 37, 80, generator=g) - 5.0
    mel_lens = torch.tensor([37, 30, 9])
    text = torch.randint(1, V, (3, 4), generator=g)
    text_lens = torch.tensor([4, 3, 2])
    return mel, mel_lens, text, text_lens


def test_forward_shapes_and_loss():
    m = tiny()
    mel, ml, text, tl = batch()
    out = m(mel, ml, text, tl)
    assert out.tokens.shape == (3, 10) and out.token_lens.tolist() == [10, 8, 3]  # ceil(T / 4)
    assert out.ctc_log_probs.shape == (3, 20, V) and out.ctc_lens.tolist() == [20, 16, 6]
    assert out.recon.shape == (3, 40, 80)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert torch.allclose(out.loss, out.ctc_loss + m.config.recon_weight * out.recon_loss)
    assert (out.tokens[2, 3:] == 0).all()  # padding
    assert int(out.tokens.max()) < m.codebook_size == 1000
    assert m(mel, ml).ctc_loss == 0  # no text: reconstruction only


def test_auxiliary_encoder_ctc():
    m = tiny(enc_ctc_weight=0.5)
    mel, ml, text, tl = batch()
    out = m(mel, ml, text, tl)
    assert out.enc_ctc_loss > 0
    assert torch.allclose(out.loss, out.ctc_loss + 0.5 * out.enc_ctc_loss + out.recon_loss)
    assert tiny().enc_ctc_out is None and tiny()(mel, ml, text, tl).enc_ctc_loss == 0


def test_utterance_vector_conditions_the_mel_head_only():
    m = tiny(global_dim=8).eval()
    mel, ml, text, tl = batch()
    vec = m.utterance_vector(m.mvn(mel), ml)
    assert vec.shape == (3, 8)
    # padding-independent: the vector of a padded row equals the row alone
    alone = m.utterance_vector(m.mvn(mel[2:3, :9]), ml[2:3])
    assert torch.allclose(alone[0], vec[2], atol=1e-5)
    out = m(mel, ml, text, tl)
    assert out.recon.shape == (3, 40, 80)
    # the vector reaches the mel head (and the reconstruction loss) but not the tokens or the CTC head
    with torch.no_grad():
        m.global_in.weight.add_(1.0)
    out2 = m(mel, ml, text, tl)
    assert torch.equal(out2.tokens, out.tokens) and torch.allclose(out2.ctc_log_probs, out.ctc_log_probs)
    assert not torch.allclose(out2.recon, out.recon)
    m.train()
    m(mel, ml, text, tl).recon_loss.backward()
    assert m.global_subsampling.convs[0].weight.grad.abs().sum() > 0
    assert tiny().global_in is None


def test_encode_is_deterministic_and_matches_forward():
    m = tiny(dropout=0.3).eval()
    mel, ml, _, _ = batch()
    t1, l1 = m.encode(mel, ml)
    t2, l2 = m.encode(mel, ml)
    assert torch.equal(t1, t2) and torch.equal(l1, l2)
    assert torch.equal(m(mel, ml).tokens, t1)


def test_padding_independence():
    m = tiny().eval()
    mel, ml, _, _ = batch()
    tokens, lens = m.encode(mel, ml)
    garbage = mel.clone()
    garbage[1, 30:] = 100.0
    garbage[2, 9:] = -100.0
    assert torch.equal(m.encode(garbage, ml)[0], tokens)
    for i in range(3):
        alone, n = m.encode(mel[i : i + 1, : ml[i]], ml[i : i + 1])
        assert n.item() == lens[i].item()
        assert torch.equal(alone[0], tokens[i, : lens[i]])


def test_embed_tokens_and_ctc_decode_read_the_tokens():
    m = tiny().eval()
    mel, ml, _, _ = batch()
    out = m(mel, ml)
    codes, _, _ = m.quantize(mel, ml)
    assert torch.equal(m.embed_tokens(out.tokens) * lengths_to_mask(out.token_lens)[..., None], codes)
    assert m.ctc_decode(out.tokens, out.token_lens) == greedy_ctc(out.ctc_log_probs, out.ctc_lens)


def test_encode_wav_resamples_and_matches_mel_path():
    m = tiny().eval()
    t = np.arange(8000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    tokens, lens = m.encode_wav(wav, 16000)
    mel = torch.from_numpy(m.mel_extractor.compute(wav))[None]  # (1, T, 80)
    assert torch.equal(tokens, m.encode(mel)[0])
    assert lens.tolist() == [13]  # 51 frames -> 13 tokens
    t22 = np.arange(11025) / 22050
    tokens22, lens22 = m.encode_wav(np.sin(2 * np.pi * 220 * t22).astype(np.float32) * 0.3, 22050)
    assert lens22.tolist() == [13]


def test_tiny_model_learns():
    m = tiny().train()
    mel, ml, text, tl = batch()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, stats = compute_loss(m, {"feats": mel, "feats_lens": ml, "text": text, "text_lens": tl})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert "cer" not in stats
    m.eval()
    _, stats = compute_loss(m, {"feats": mel, "feats_lens": ml, "text": text, "text_lens": tl})
    assert 0.0 <= stats["cer"] <= 100.0 * 3 and stats["weight"] == 9


def test_gradient_reaches_encoder_through_quantizer():
    m = tiny()
    mel, ml, text, tl = batch()
    m(mel, ml, text, tl).ctc_loss.backward()  # CTC only: the path goes through FSQ
    assert m.encoder.layers[0].ff.net[0].weight.grad.abs().sum() > 0
    assert m.subsampling.convs[0].weight.grad.abs().sum() > 0


def test_stats_are_part_of_the_state_dict(tmp_path):
    m = tiny()
    m.mvn.mean.fill_(-4.0)
    m2 = tiny()
    m2.load_state_dict(m.state_dict())
    assert (m2.mvn.mean == -4.0).all()
    assert not any(k.startswith(("mel_extractor", "fsq")) for k in m.state_dict())


def test_config_checks():
    with pytest.raises(ValueError, match="vocab_size"):
        SpeechTokenizer(SpeechTokenizerConfig())
    c = SpeechTokenizerConfig(vocab_size=5, mel={"n_mels": 40}, fsq_levels=[5, 5])
    assert c.mel.n_mels == 40 and c.codebook_size == 25 and c.token_rate == 25.0


@pytest.mark.parametrize("conv_kernel,position", [(0, "abs"), (5, "abs"), (5, "rope"), (0, "none")])
def test_encoder_and_subsampling_padding_independence(conv_kernel, position):
    torch.manual_seed(0)
    sub = Conv1dSubsampling(8, 16, factor=4).eval()
    enc = Encoder(16, 2, 2, 32, conv_kernel=conv_kernel, dropout=0.0, position=position).eval()
    x = torch.randn(2, 21, 8)
    lens = torch.tensor([21, 6])
    h, hl = sub(x, lens)
    y = enc(h, hl)
    assert hl.tolist() == [6, 2] and y.shape == (2, 6, 16)
    ya = enc(*sub(x[1:, :6], lens[1:]))
    assert torch.allclose(ya[0], y[1, :2], atol=1e-5)
    assert (y[1, 2:] == 0).all()


def test_metrics_helpers():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2], []) == 2
    lp = torch.log_softmax(torch.tensor([[[0, 5, 0], [0, 5, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]]]).float(), -1)
    assert greedy_ctc(lp, torch.tensor([5])) == [[1, 1, 2]]
    assert greedy_ctc(lp, torch.tensor([2])) == [[1]]
    s = codebook_stats(np.array([5, 5, 0, 0]))
    assert s["codebook_perplexity"] == pytest.approx(2.0) and s["codebook_usage"] == 0.5
