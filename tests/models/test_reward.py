"""MultiTaskReward: soft == id inputs, gradients through text_logprob, CTC value, batching, loading."""
import pytest
import torch
import torch.nn.functional as F

from ttsrl.models.reward import (
    MultiTaskReward,
    MultiTaskRewardConfig,
    corrupt_tokens,
    ctc_feasible,
    load_reward_model,
)

V, VT = 20, 9
NAMES = {"emotion": ["angry", "happy", "neutral", "sad"], "gender": ["f", "m"], "age": ["adult", "child"]}


def make_model(**kw):
    torch.manual_seed(0)
    cfg = MultiTaskRewardConfig(speech_vocab_size=V, text_vocab_size=VT, d_model=16, n_heads=2, d_ff=32,
                                n_layers=2, dropout=0.0, label_names=NAMES, quality_mean=3.0, quality_std=2.0, **kw)
    model = MultiTaskReward(cfg).eval()
    if cfg.code_dim:  # stands in for the tokenizer's FSQ codes
        model.set_code_table(torch.rand(V, cfg.code_dim, generator=torch.Generator().manual_seed(5)) * 2 - 1)
    return model


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (3, 7), generator=g)
    lens = torch.tensor([7, 5, 3])
    text = torch.tensor([[2, 3, 4, 5], [3, 3, 6, 0], [7, 8, 0, 0]])
    text_lens = torch.tensor([4, 3, 2])
    return ids, lens, text, text_lens


def test_config_counts_classes_from_names():
    cfg = MultiTaskRewardConfig(text_vocab_size=VT, label_names=NAMES)
    assert (cfg.num_emotions, cfg.num_genders, cfg.num_ages) == (4, 2, 2)
    with pytest.raises(ValueError, match="num_emotions=3"):
        MultiTaskRewardConfig(text_vocab_size=VT, label_names=NAMES, num_emotions=3)
    with pytest.raises(ValueError, match="unknown heads"):
        MultiTaskRewardConfig(text_vocab_size=VT, label_names={"mood": ["x"]})


@pytest.mark.parametrize("code_dim", [0, 3])
def test_one_hot_input_equals_ids(code_dim):
    model = make_model(code_dim=code_dim)
    ids, lens, _, _ = batch()
    a = model(ids, lens)
    b = model(F.one_hot(ids, V).float(), lens)
    for name in ("ctc_log_probs", "emo_logits", "gender_logits", "age_logits", "quality"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-5)
    assert a.ctc_log_probs.shape == (3, 14, VT) and a.ctc_lens.tolist() == [14, 10, 6]
    assert a.emo_logits.shape == (3, 4) and a.gender_logits.shape == (3, 2) and a.quality.shape == (3,)
    torch.testing.assert_close(a.quality, a.quality_norm * 2.0 + 3.0)


def test_padding_does_not_change_an_utterance():
    model = make_model()
    ids, lens, _, _ = batch()
    alone = model(ids[2:, :3], lens[2:])
    batched = model(ids, lens)
    torch.testing.assert_close(alone.emo_logits[0], batched.emo_logits[2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone.ctc_log_probs[0], batched.ctc_log_probs[2, :6], rtol=1e-5, atol=1e-5)


def test_text_logprob_is_minus_ctc_loss():
    model = make_model()
    ids, lens, text, text_lens = batch()
    lp = model.text_logprob(ids, lens, text, text_lens)
    out = model(ids, lens)
    ref = [-F.ctc_loss(out.ctc_log_probs[i, : int(out.ctc_lens[i])][:, None], text[i : i + 1, : int(text_lens[i])],
                       out.ctc_lens[i : i + 1], text_lens[i : i + 1], reduction="sum") for i in range(3)]
    torch.testing.assert_close(lp, torch.stack(ref), rtol=1e-5, atol=1e-4)
    assert (lp < 0).all()


@pytest.mark.parametrize("code_dim", [0, 3])
def test_gradients_reach_the_soft_input(code_dim):
    model = make_model(code_dim=code_dim)
    ids, lens, text, text_lens = batch()
    soft = F.one_hot(ids, V).float().requires_grad_(True)
    lp = model.text_logprob(soft, lens, text, text_lens)
    lp.sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    assert soft.grad[1, 5:].abs().sum() == 0  # padded frames do not matter
    # and through the emotion head
    soft.grad = None
    model(soft, lens).emo_logits[:, 1].sum().backward()
    assert soft.grad.abs().sum() > 0


def test_infeasible_text_gets_the_floor_not_zero():
    model = make_model(ctc_upsample=1)
    ids = torch.zeros(1, 3, dtype=torch.long)
    text = torch.tensor([[2, 3, 4, 5]])  # 4 labels, 3 CTC frames
    lp = model.text_logprob(ids, torch.tensor([3]), text, torch.tensor([4]))
    assert lp.item() == pytest.approx(-80.0)
    # labels + repeats: [2, 2, 3] needs 4 frames; [2, 3] (the repeat lies past its length) needs 2
    frames, text_lens = torch.tensor([3, 2, 4]), torch.tensor([3, 2, 3])
    text = torch.tensor([[2, 2, 3], [2, 3, 3], [2, 2, 3]])
    assert ctc_feasible(frames, text, text_lens).tolist() == [False, True, True]
    lp = torch.randn(4, 3, VT).log_softmax(-1)
    nll = F.ctc_loss(lp, text, frames, text_lens, reduction="none")  # CTC itself agrees
    assert torch.isinf(nll[0]) and torch.isfinite(nll[1:]).all()


def test_label_ids_by_name():
    model = make_model()
    assert model.label_ids("emotion", ["sad", "angry", 1]).tolist() == [3, 0, 1]
    assert model.emotion_names == NAMES["emotion"]
    with pytest.raises(ValueError, match="unknown emotion label 'joy'"):
        model.label_ids("emotion", ["joy"])


def test_bad_input_shapes_raise():
    model = make_model()
    with pytest.raises(ValueError, match=r"\(B, T, 20\)"):
        model(torch.zeros(2, 3, V + 1), torch.tensor([3, 3]))


def test_corrupt_tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.arange(1, 101).repeat(4, 1)
    lens = torch.tensor([100, 100, 50, 1])
    same, same_lens = corrupt_tokens(ids, lens, 1000, 0.0, 0.0, generator=g)
    assert torch.equal(same_lens, lens) and torch.equal(same[0], ids[0]) and same[2, 50:].eq(0).all()
    out, new_lens = corrupt_tokens(ids, lens, 1000, sub_prob=0.0, del_prob=0.5, generator=g)
    assert (new_lens[:3] < lens[:3]).all() and new_lens[3] == 1  # one token is always kept
    kept = out[0, : new_lens[0]]
    assert (kept[1:] > kept[:-1]).all()  # deletions keep the order
    assert out[0, new_lens[0]:].eq(0).all()
    sub, sub_lens = corrupt_tokens(ids, lens, 1000, sub_prob=0.5, del_prob=0.0, generator=g)
    assert torch.equal(sub_lens, lens)
    changed = (sub[:2] != ids[:2]).float().mean()
    assert 0.3 < changed < 0.7


@pytest.mark.parametrize("code_dim", [0, 3])
def test_load_reward_model(tmp_path, code_dim):
    import dataclasses

    model = make_model(code_dim=code_dim)
    torch.save({"model": model.state_dict(), "config": {"model_conf": dataclasses.asdict(model.config)}},
               tmp_path / "model.pt")
    loaded = load_reward_model(tmp_path)
    assert not loaded.training and loaded.config.label_names == NAMES
    ids, lens, _, _ = batch()
    torch.testing.assert_close(loaded(ids, lens).emo_logits, model(ids, lens).emo_logits)
    with pytest.raises(FileNotFoundError):
        load_reward_model(tmp_path / "nope")
    if code_dim:  # the code table is part of model.pt
        torch.testing.assert_close(loaded.code_table, model.code_table)
        with pytest.raises(ValueError, match="code table must be"):
            model.set_code_table(torch.zeros(V, code_dim + 1))
    else:
        with pytest.raises(ValueError, match="learned table"):
            model.set_code_table(torch.zeros(V, 3))


def test_text_path_starts_from_the_tokenizer_ctc_head():
    from ttsrl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig

    torch.manual_seed(0)
    tok = SpeechTokenizer(SpeechTokenizerConfig(vocab_size=VT, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                                                conv_kernel=3, ctc_layers=2, recon_layers=1, dropout=0.0,
                                                fsq_levels=[5, 4])).eval()
    model = make_model(code_dim=2, conv_kernel=3, cls_layers=1)
    model.set_code_table(tok.embed_tokens(torch.arange(V)))
    model.init_ctc_from_tokenizer(tok)
    ids, lens, _, _ = batch()
    want, want_lens = tok.ctc_log_probs(ids, lens)
    out = model(ids, lens)
    assert torch.equal(out.ctc_lens, want_lens)
    valid = torch.arange(want.shape[1])[None, :] < want_lens[:, None]
    torch.testing.assert_close(out.ctc_log_probs[valid], want[valid])
    # the utterance heads read the extra layers
    assert model.cls_encoder is not None and out.emo_logits.shape == (3, 4)
    with pytest.raises(ValueError, match=r"n_layers=2 \(tokenizer: 1\)"):
        make_model(code_dim=2, conv_kernel=3).init_ctc_from_tokenizer(
            SpeechTokenizer(SpeechTokenizerConfig(vocab_size=VT, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                                                  conv_kernel=3, ctc_layers=1, fsq_levels=[5, 4])))
