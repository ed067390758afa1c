"""Sampler: determinism, cache == no cache, log-probs == teacher forcing, filters, length bounds."""
import pytest
import torch

from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.sample.sampler import SamplingConfig, filter_logits, sample


def tiny(position="learned"):
    torch.manual_seed(0)
    return CodecLM(CodecLMConfig(text_vocab_size=20, speech_vocab_size=30, d_model=32, n_layers=2,
                                 n_heads=4, d_ff=64, dropout=0.0, max_len=256, position=position,
                                 speech_pos_rate=0.6)).eval()


POSITIONS = pytest.mark.parametrize("position", ["learned", "rope"])


TEXT = torch.tensor([[3, 4, 5, 6, 7, 8], [8, 9, 10, 0, 0, 0]])
TLENS = torch.tensor([6, 3])
PROMPT = torch.tensor([[1, 2, 3], [4, 0, 0]])
PLENS = torch.tensor([3, 1])


def run(m, **kw):
    cfg = SamplingConfig(**{"num_candidates": 3, "top_k": 10, "seed": 7, **kw})
    return sample(m, TEXT, TLENS, cfg, prompt=PROMPT, prompt_lens=PLENS, target_text_lens=torch.tensor([4, 2]))


def test_deterministic_given_seed_and_differs_across_seeds():
    m = tiny()
    a, b, c = run(m), run(m), run(m, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True))
    assert torch.equal(a.logprobs, b.logprobs)
    assert any(not torch.equal(x, y) for x, y in zip(a.tokens, c.tokens, strict=True))


@POSITIONS
def test_cache_equals_no_cache(position):
    m = tiny(position)
    a, b = run(m, use_cache=True), run(m, use_cache=False)
    assert all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True))
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-4)


@POSITIONS
@pytest.mark.parametrize("compact", [True, False])
def test_logprobs_match_teacher_forced_pass_with_prompt(compact, position):
    m = tiny(position)
    out = run(m, top_k=0, compact=compact)
    for i, toks in enumerate(out.tokens):
        r = i // 3
        sp = torch.cat([PROMPT[r, : PLENS[r]], toks])[None]
        logp, _ = m.token_logprobs(TEXT[r : r + 1, : TLENS[r]], TLENS[r : r + 1], sp, torch.tensor([sp.shape[1]]),
                                   prompt_lens=PLENS[r : r + 1])
        # <eos> is scored only when the model chose it
        expected = logp.sum() if out.finished[i] else logp[0, : -1].sum()
        assert torch.allclose(out.logprobs[i], expected, atol=1e-4), (i, out.logprobs[i], expected)


def test_length_bounds():
    m = tiny()
    out = run(m, max_len_ratio=2.0, min_len_ratio=1.0)
    tgt = [4, 4, 4, 2, 2, 2]
    for toks, n, fin in zip(out.tokens, tgt, out.finished, strict=True):
        assert n * 1.0 <= len(toks) <= 2 * n
        assert fin or len(toks) == 2 * n - 1


def test_finished_rows_leave_the_batch():
    m = tiny()
    sizes, step = [], m.step
    m.step = lambda tok, pos, cache: (sizes.append((tok.shape[0], cache.k.shape[1])), step(tok, pos, cache))[1]
    out = run(m, max_len_ratio=4.0, min_len_ratio=4.0)  # <eos> forced at 16 for the first text's rows, 8 for the second's
    assert [len(t) for t in out.tokens] == [15, 15, 15, 7, 7, 7]
    assert sizes[0] == (6, 6) and sizes[-1] == (3, 3)  # the second text's three rows left the batch and the cache
    sizes.clear()
    out = run(m, max_len_ratio=4.0, min_len_ratio=4.0, compact=False)
    assert [len(t) for t in out.tokens] == [15, 15, 15, 7, 7, 7] and set(sizes) == {(6, 6)}


def test_repetition_guard_limits_runs():
    m = tiny()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.weight[5, 0] = 1.0  # token 5 dominates everywhere
        m.ln_f.bias.fill_(50.0)
        m.ln_f.weight.zero_()
    out = run(m, top_k=1, rep_window=4, rep_max=2, max_len_ratio=5.0, min_len_ratio=5.0)
    for toks in out.tokens:
        t = toks.tolist()
        for j in range(len(t)):
            if t[j] == 5:
                assert t[max(0, j - 4) : j].count(5) < 2


def test_filter_logits_top_k_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    k = filter_logits(logits, top_k=2)
    assert torch.isinf(k[0, 2:]).all() and torch.isfinite(k[0, :2]).all()
    p = filter_logits(logits, top_p=0.7)
    assert torch.isfinite(p[0, :2]).all() and torch.isinf(p[0, 2:]).all()
    p = filter_logits(logits, top_p=0.5)
    assert torch.isfinite(p[0, :1]).all() and torch.isinf(p[0, 1:]).all()


def tiny_cfg(position="learned"):
    torch.manual_seed(0)
    return CodecLM(CodecLMConfig(text_vocab_size=20, speech_vocab_size=30, d_model=32, n_layers=2,
                                 n_heads=4, d_ff=64, dropout=0.0, max_len=256, position=position,
                                 speech_pos_rate=0.6, text_dropout=0.1)).eval()


@POSITIONS
@pytest.mark.parametrize("compact", [True, False])
def test_cfg_cache_equals_no_cache(position, compact):
    m = tiny_cfg(position)
    a = run(m, cfg_scale=1.5, use_cache=True, compact=compact, max_len_ratio=3.0)
    b = run(m, cfg_scale=1.5, use_cache=False, compact=compact, max_len_ratio=3.0)
    assert all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True))
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-4)


@POSITIONS
@torch.no_grad()
def test_cfg_greedy_follows_the_guided_log_probs(position):
    """top_k 1: every token is the argmax of (1+s) log p(.|text) - s log p(.|no text) of teacher-forced passes."""
    m, s = tiny_cfg(position), 2.0
    out = run(m, cfg_scale=s, top_k=1, num_candidates=1, min_len_ratio=0.0)
    for r, toks in enumerate(out.tokens):
        sp = torch.cat([PROMPT[r, : PLENS[r]], toks])[None]
        args = (TEXT[r : r + 1, : TLENS[r]], TLENS[r : r + 1], sp, torch.tensor([sp.shape[1]]), PLENS[r : r + 1])
        cond = torch.log_softmax(m(*args).logits[0], -1)
        uncond = torch.log_softmax(m(*args, drop_text=torch.tensor([True])).logits[0], -1)
        guided = (1 + s) * cond - s * uncond
        p = int(PLENS[r])
        chosen = guided[p : p + len(toks)].argmax(-1)
        assert torch.equal(chosen, toks), (r, chosen, toks)
        # the reported log-prob is the conditional model's
        expected = cond[p : p + len(toks)].gather(1, toks[:, None]).sum()
        if out.finished[r]:
            expected = expected + cond[p + len(toks), m.eos]
        assert torch.allclose(out.logprobs[r], expected, atol=1e-4)


def test_cfg_changes_the_samples_and_scale_zero_does_not_guide():
    m = tiny_cfg()
    plain, zero, guided = run(m), run(m, cfg_scale=0.0), run(m, cfg_scale=3.0)
    assert all(torch.equal(x, y) for x, y in zip(plain.tokens, zero.tokens, strict=True))
    assert any(not torch.equal(x, y) for x, y in zip(plain.tokens, guided.tokens, strict=True))


def test_cfg_needs_an_lm_trained_with_text_dropout():
    with pytest.raises(ValueError, match="text_dropout"):
        run(tiny(), cfg_scale=1.0)


def test_drop_text_is_the_prefix_without_text():
    """A dropped row reads as a row with no text; the text-position head keeps the text as its target."""
    torch.manual_seed(0)
    m = CodecLM(CodecLMConfig(text_vocab_size=20, speech_vocab_size=30, d_model=32, n_layers=2, n_heads=4,
                              d_ff=64, dropout=0.0, max_len=256, ctc_weight=0.5, text_dropout=0.2)).eval()
    sp, sl = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 0, 0, 0]]), torch.tensor([8, 5])
    drop = torch.tensor([True, False])
    out = m(TEXT, TLENS, sp, sl, drop_text=drop)
    none = m(TEXT, torch.tensor([0, 3]), sp, sl)
    full = m(TEXT, TLENS, sp, sl)
    assert torch.allclose(out.logits[0], none.logits[0], atol=1e-5)
    assert torch.allclose(out.logits[1], full.logits[1], atol=1e-5)
    assert not torch.allclose(out.logits[0], full.logits[0], atol=1e-3)
    # CTC target: the whole text of each row (a dropped row is not taught to read nothing)
    assert torch.isfinite(out.ctc_loss) and out.ctc_loss > 0
