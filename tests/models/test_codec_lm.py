"""CodecLM: loss only on speech targets, padding-independence, prompt masking."""
import pytest
import torch

from ttsrl.models.codec_lm import CodecLM, CodecLMConfig


def tiny(**kw):
    torch.manual_seed(0)
    cfg = CodecLMConfig(text_vocab_size=20, speech_vocab_size=30, d_model=32, n_layers=2, n_heads=4,
                        d_ff=64, dropout=0.0, max_len=128, **kw)
    return CodecLM(cfg).eval()


def batch():
    text = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 0, 0, 0]])
    text_lens = torch.tensor([5, 2])
    speech = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 0]])
    speech_lens = torch.tensor([4, 3])
    return text, text_lens, speech, speech_lens


def test_shapes_targets_and_mask():
    m = tiny()
    text, tl, sp, sl = batch()
    out = m(text, tl, sp, sl)
    assert out.logits.shape == (2, 5, 31)
    assert out.target.tolist() == [[1, 2, 3, 4, 30], [5, 6, 7, 30, 0]]
    assert out.mask.tolist() == [[True] * 5, [True, True, True, True, False]]
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


POSITIONS = pytest.mark.parametrize("position", [{}, {"position": "rope", "speech_pos_rate": 0.6}])


@POSITIONS
def test_padding_content_does_not_move_loss(position):
    m = tiny(**position)
    text, tl, sp, sl = batch()
    ref = m(text, tl, sp, sl).loss
    text2, sp2 = text.clone(), sp.clone()
    text2[1, 2:] = 19  # garbage in text padding
    sp2[1, 3:] = 29  # garbage in speech padding
    assert torch.allclose(m(text2, tl, sp2, sl).loss, ref, atol=1e-6)


@POSITIONS
def test_sample_independent_of_batch_partner(position):
    m = tiny(**position)
    text, tl, sp, sl = batch()
    both = m(text, tl, sp, sl).logits[1, :4]
    alone = m(text[1:, :2], tl[1:], sp[1:, :3], sl[1:]).logits[0, :4]
    assert torch.allclose(both, alone, atol=1e-5)


def test_prompt_positions_are_not_targets():
    m = tiny()
    text, tl, sp, sl = batch()
    out = m(text, tl, sp, sl, prompt_lens=torch.tensor([2, 1]))
    assert out.mask.tolist() == [[False, False, True, True, True], [False, True, True, True, False]]
    logp, mask = m.token_logprobs(text, tl, sp, sl, prompt_lens=torch.tensor([2, 1]))
    assert (logp[~mask] == 0).all() and (logp[mask] < 0).all()


def test_loss_gradient_and_learning():
    m = tiny()
    m.train()
    text, tl, sp, sl = batch()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        out = m(text, tl, sp, sl)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.loss.item()
    assert out.loss.item() < 0.2 * first
    assert out.acc.item() == 1.0


def test_tags_and_speaker_tokens_required_when_configured():
    m = tiny(num_tags=2, spk_embed_dim=8)
    text, tl, sp, sl = batch()
    with pytest.raises(ValueError, match="tags"):
        m(text, tl, sp, sl, spk=torch.zeros(2, 8))
    out = m(text, tl, sp, sl, spk=torch.randn(2, 8), tags=torch.tensor([0, 1]))
    assert out.logits.shape == (2, 5, 31)


def test_too_long_sequence_is_a_clear_error():
    m = tiny()
    text = torch.ones(1, 100, dtype=torch.long)
    sp = torch.ones(1, 40, dtype=torch.long)
    with pytest.raises(ValueError, match="max_len"):
        m(text, torch.tensor([100]), sp, torch.tensor([40]))


def test_rope_puts_speech_on_the_text_scale():
    """Speech column j sits at text_start + rate * j, so a query scores highest against the key
    (same content) of the text column with the same coordinate."""
    from ttsrl.models.modules import apply_rope, rope_tables

    m = tiny(position="rope", speech_pos_rate=0.5)
    pos = torch.arange(11)[None]  # <sos>, 6 text, <task>, 3 speech
    _, (cos, sin) = m._positions(torch.zeros(1, 11, 32), pos, torch.tensor([8]))
    ref_cos, ref_sin = rope_tables(torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 1, 1.5, 2]]), 8, 10000.0)
    assert torch.allclose(cos, ref_cos) and torch.allclose(sin, ref_sin)
    rotated = apply_rope(torch.ones(1, 1, 11, 8), cos, sin)[0, 0]
    scores = rotated[:8] @ rotated[10]  # the third speech column (coordinate 2) vs <sos> and the text
    assert int(scores.argmax()) == 2


def test_position_options_are_checked():
    with pytest.raises(ValueError, match="speech_pos_rate > 0"):
        tiny(position="rope")
    with pytest.raises(ValueError, match="learned' or 'rope'"):
        tiny(position="alibi")


def test_text_position_head_reads_the_text_from_the_speech_columns():
    import torch.nn.functional as F

    m = tiny(ctc_weight=0.5, ctc_upsample=2)
    text, tl, _, _ = batch()
    sp = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8], [5, 6, 7, 8, 9, 10, 0, 0]])  # 8 and 6 speech columns
    sl = torch.tensor([8, 6])
    seen = {}
    m.ln_f.register_forward_hook(lambda mod, inp, out: seen.update(h=out))
    out = m(text, tl, sp, sl)
    # by hand: the head on the final hidden states of the speech columns (after <sos> text <task>)
    n_prefix = 1 + text.shape[1] + 1
    lp = F.log_softmax(m.text_pos_head(seen["h"][:, n_prefix:]), -1)  # (2, 16, 20)
    by_hand = sum(F.ctc_loss(lp[i, : 2 * int(sl[i])], text[i, : int(tl[i])], [2 * int(sl[i])], [int(tl[i])],
                             reduction="sum") for i in range(2)) / tl.sum()
    assert out.ctc_loss is not None and torch.allclose(out.ctc_loss, by_hand, atol=1e-5)
    ce = F.cross_entropy(out.logits[out.mask], out.target[out.mask])
    assert torch.allclose(out.loss, ce, atol=1e-6)  # the CE does not include it
    sp2 = sp.clone()
    sp2[1, 6:] = 29  # garbage in the padding does not move it
    assert torch.allclose(m(text, tl, sp2, sl).ctc_loss, out.ctc_loss, atol=1e-6)
    assert tiny()(text, tl, sp, sl).ctc_loss is None


def test_text_position_head_is_added_by_the_task():
    from ttsrl.tasks.lm import LMTask

    m = tiny(ctc_weight=0.5)
    text, tl, sp, sl = batch()
    sp, sl = torch.cat([sp, sp], 1), sl * 2
    loss, stats = LMTask().compute_loss(m, {"text": text, "text_lens": tl, "speech": sp, "speech_lens": sl})
    assert torch.allclose(loss, stats["ce"] + 0.5 * stats["ctc"]) and stats["ctc"] > 0
    loss0, stats0 = LMTask().compute_loss(tiny(), {"text": text, "text_lens": tl, "speech": sp, "speech_lens": sl})
    assert "ctc" not in stats0 and torch.allclose(loss0, stats0["ce"])


def test_text_dropout_is_drawn_by_the_task():
    """text_dropout 1: every item is read without its text (the CE of the no-text prefix); 0: none is."""
    from ttsrl.tasks.lm import LMTask

    m = tiny(text_dropout=1.0)
    text, tl, sp, sl = batch()
    _, stats = LMTask().compute_loss(m, {"text": text, "text_lens": tl, "speech": sp, "speech_lens": sl})
    assert torch.allclose(stats["ce"], m(text, torch.zeros_like(tl), sp, sl).loss, atol=1e-6)
    assert not torch.allclose(stats["ce"], m(text, tl, sp, sl).loss, atol=1e-4)
    _, stats = LMTask().compute_loss(tiny(), {"text": text, "text_lens": tl, "speech": sp, "speech_lens": sl})
    assert torch.allclose(stats["ce"], tiny()(text, tl, sp, sl).loss, atol=1e-6)


@POSITIONS
def test_prefill_and_step_continue_the_teacher_forced_pass(position):
    """The sampler's public API: prefill the prompt, then step token by token; the hidden states give the
    same next-token logits as the teacher-forced pass, cached or not."""
    m = tiny(**position)
    text, tl, sp, sl = batch()
    prompt, pl = sp[:, :2], torch.tensor([2, 2])  # the first two speech tokens are the prompt
    ref = m(text, tl, sp, sl).logits  # column j predicts speech token j (j = 0: after <task>)
    x, valid, n_prefix = m.embed_inputs(text, tl, prompt, pl)
    cache = m.new_cache(2, x.shape[1] + 2, x.device, x.dtype)
    h = m.prefill(x, valid, n_prefix, cache)
    assert torch.allclose(m.head(h), ref[:, 2], atol=1e-5)
    assert torch.allclose(m.head(m.prefill(x, valid, n_prefix)), ref[:, 2], atol=1e-5)  # without a cache
    h = m.step(sp[:, 2], valid.sum(1), cache)
    assert torch.allclose(m.head(h), ref[:, 3], atol=1e-5)
