"""GRPO's loss pieces against hand-computed values: advantages, the clipped objective, the k3 KL, masks, groups."""
import math

import pytest
import torch

from ttsrl.align.data import forward_rows, speech_rows
from ttsrl.losses.grpo import generated_mask, group_advantages, grpo_loss, k3_kl, keep_groups
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig


def test_group_advantages_by_hand():
    r = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    adv = group_advantages(r)  # mean 2, unbiased std 1
    torch.testing.assert_close(adv[0], torch.tensor([-1.0, 0.0, 1.0]) / (1.0 + 1e-4))
    assert torch.equal(adv[1], torch.zeros(3))  # equal rewards: no advantage
    torch.testing.assert_close(group_advantages(r, scale=False), torch.tensor([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.ones(3, 1))


LOG = math.log
# row 0: ratios 2.0 and 1.0 (position 2 is not generated); row 1: ratios 0.5, 1.0, 1.1
LOGP = torch.tensor([[LOG(0.5), LOG(0.25), 0.0], [LOG(0.5), LOG(0.5), LOG(0.55)]])
OLD = torch.tensor([[LOG(0.25), LOG(0.25), 0.0], [LOG(1.0), LOG(0.5), LOG(0.5)]])
MASK = torch.tensor([[True, True, False], [True, True, True]])
ADV = torch.tensor([1.0, -1.0])


def test_clipped_objective_by_hand():
    out = grpo_loss(LOGP, OLD, None, ADV, MASK, clip_eps=0.2)
    # row 0 (A = 1): min(2, 1.2) = 1.2 and 1 -> mean 1.1; row 1 (A = -1): min(-0.5, -0.8) = -0.8, -1, -1.1 -> -0.9667
    expected = (-1.1 + (0.8 + 1.0 + 1.1) / 3) / 2
    assert out.loss.item() == pytest.approx(expected, abs=1e-6)
    assert out.policy_loss.item() == pytest.approx(expected, abs=1e-6)
    assert out.clip_frac.item() == pytest.approx(2 / 5)  # row 0's 2.0 above 1.2 and row 1's 0.5 below 0.8
    assert out.ratio.item() == pytest.approx((2.0 + 1.0 + 0.5 + 1.0 + 1.1) / 5, abs=1e-6)
    assert out.tokens.item() == 5 and out.kl.item() == 0.0
    # Dr. GRPO: one constant (rows x max_len) divides the token sum
    dr = grpo_loss(LOGP, OLD, None, ADV, MASK, clip_eps=0.2, dr_grpo=True, max_len=4)
    assert dr.loss.item() == pytest.approx((-(1.2 + 1.0) + (0.8 + 1.0 + 1.1)) / (2 * 4), abs=1e-6)


def test_k3_kl_by_hand_and_zero_at_identity():
    ref = LOGP.clone()
    ref[0, 0] = LOG(0.25)  # pi_ref / pi = 0.5: k3 = 0.5 - log 0.5 - 1
    k = 0.5 - LOG(0.5) - 1.0
    assert k3_kl(LOGP, ref)[0, 0].item() == pytest.approx(k, abs=1e-6)
    assert torch.equal(k3_kl(LOGP, LOGP), torch.zeros_like(LOGP))
    base = grpo_loss(LOGP, OLD, None, ADV, MASK)
    out = grpo_loss(LOGP, OLD, ref, ADV, MASK, kl_weight=0.1)
    assert out.kl.item() == pytest.approx(k / 5, abs=1e-6)  # the mean over the 5 generated tokens
    assert out.loss.item() - base.loss.item() == pytest.approx(0.1 * k / 2 / 2, abs=1e-6)  # row 0's mean, 2 rows
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(LOGP, OLD, None, ADV, MASK, kl_weight=0.1)


def test_gradient_at_the_first_update():
    """old = logp.detach(): ratio 1, and d loss / d logp = -A / (tokens of the row x rows) on generated positions."""
    logp = LOGP.clone().requires_grad_(True)
    grpo_loss(logp, logp.detach(), None, ADV, MASK).loss.backward()
    expected = torch.tensor([[-1.0 / (2 * 2), -1.0 / (2 * 2), 0.0], [1.0 / (3 * 2)] * 3])
    torch.testing.assert_close(logp.grad, expected)


def test_rows_left_out_and_no_row_at_all():
    keep = torch.tensor([True, False])
    out = grpo_loss(LOGP, OLD, None, ADV, MASK, row_mask=keep)
    assert out.loss.item() == pytest.approx(-1.1, abs=1e-6) and out.tokens.item() == 2  # row 0 alone
    logp = LOGP.clone().requires_grad_(True)
    none = grpo_loss(logp, OLD, None, ADV, MASK, row_mask=torch.tensor([False, False]))
    assert none.loss.item() == 0.0
    none.loss.backward()  # still a graph: a DDP rank without kept groups joins the gradient average
    assert torch.equal(logp.grad, torch.zeros_like(LOGP))


def test_keep_groups():
    r = torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])
    cer = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.95, 1.5], [0.1, 0.2, 0.6]])
    assert keep_groups(r).tolist() == [False, True, True]  # equal rewards carry no signal
    assert keep_groups(r, skip_equal=False).tolist() == [True, True, True]
    assert keep_groups(r, cer).tolist() == [False, True, True]  # thresholds of 1 never drop (CER clamped to 1)
    assert keep_groups(r, cer, max_best_cer=0.8).tolist() == [False, False, True]  # group 1's best reads at 0.9
    assert keep_groups(r, cer, max_best_cer=0.8, max_worst_cer=0.5).tolist() == [False, False, False]


def test_masks_count_only_generated_speech():
    """The LM's rows are [text | prompt speech + candidate]; only the candidate (and an <eos> the policy chose)
    counts: the text has no target column, the prompt, the padding and a forced <eos> are masked."""
    torch.manual_seed(0)
    lm = CodecLM(CodecLMConfig(text_vocab_size=10, speech_vocab_size=12, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                               dropout=0.0, max_len=64)).eval()
    prompt = torch.tensor([3, 4])
    cands = [torch.tensor([5, 6, 7]), torch.tensor([8])]
    speech, speech_lens = speech_rows([prompt, prompt], cands)  # prompt + candidate, right-padded
    batch = {"text": torch.tensor([[2, 3, 4, 5], [2, 3, 4, 5]]), "text_lens": torch.tensor([4, 4]),
             "prompt_lens": torch.tensor([2, 2])}
    finished = torch.tensor([True, False])  # row 1 was cut at the length bound: its <eos> was forced
    with torch.no_grad():
        logp, lm_mask, out = forward_rows(lm, batch, ("chosen",), speech=(speech, speech_lens))
    assert out.logits.shape[1] == speech.shape[1] + 1  # columns of the speech region only: the text is not there
    mask = generated_mask(lm_mask, speech_lens, finished)
    assert mask[0].nonzero().flatten().tolist() == [2, 3, 4, 5]  # 3 tokens + the chosen <eos>
    assert mask[1].nonzero().flatten().tolist() == [2]  # 1 token; prompt (0, 1), forced <eos> (3), padding: out
    assert generated_mask(lm_mask, speech_lens, torch.tensor([True, True]))[1].nonzero().flatten().tolist() == [2, 3]
    adv = torch.tensor([1.0, -0.5])
    ref = logp + 0.1 * torch.randn_like(logp)
    base = grpo_loss(logp, logp - 0.05, ref, adv, mask, kl_weight=0.1)
    junk = torch.where(mask, logp, torch.randn_like(logp) * 10)  # anything outside the mask
    again = grpo_loss(junk, torch.where(mask, logp - 0.05, junk), torch.where(mask, ref, -junk), adv, mask,
                      kl_weight=0.1)
    assert again.loss.item() == pytest.approx(base.loss.item(), abs=1e-6) and again.tokens.item() == 5
