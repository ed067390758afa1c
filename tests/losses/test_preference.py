"""Preference losses: hand-computed values, the identity case, masking (with a CodecLM batch), bad options."""
import math

import pytest
import torch

from ttsrl.losses.preference import (
    check_preference_options,
    preference_loss,
    resolve_average,
    sequence_logprobs,
    sft_loss,
)
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig

# pi(y_w) = -1, pi(y_l) = -3, ref(y_w) = ref(y_l) = -2: log-ratios +1 and -1, h = 2
POL_C, POL_R, REF_C, REF_R = (torch.tensor([v]) for v in (-1.0, -3.0, -2.0, -2.0))


@pytest.mark.parametrize("loss_type, beta, eps, expected", [
    ("sigmoid", 0.5, 0.0, 0.31326168751822286),  # log(1 + e^-1)
    ("cdpo", 0.5, 0.1, 0.41326168751822286),  # 0.9 log(1 + e^-1) + 0.1 log(1 + e^1)
    ("robust", 0.5, 0.1, 0.18826168751822286),  # (0.9 log(1 + e^-1) - 0.1 log(1 + e^1)) / 0.8
    ("ipo", 0.5, 0.0, 1.0),  # (2 - 1 / (2 * 0.5))^2
    ("hinge", 0.25, 0.0, 0.5),  # max(0, 1 - 0.25 * 2)
])
def test_hand_computed_values(loss_type, beta, eps, expected):
    loss, r_c, r_r = preference_loss(POL_C, POL_R, REF_C, REF_R, beta, loss_type, eps)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert r_c.item() == pytest.approx(beta * 1.0) and r_r.item() == pytest.approx(beta * -1.0)


@pytest.mark.parametrize("loss_type, eps, expected", [
    ("sigmoid", 0.0, math.log(2)), ("cdpo", 0.2, math.log(2)), ("robust", 0.2, math.log(2)),
    ("ipo", 0.0, (1 / (2 * 0.1)) ** 2), ("hinge", 0.0, 1.0),
])
def test_identity_policy_equals_reference(loss_type, eps, expected):
    seq = torch.tensor([-12.0, -40.5, -3.25])
    rej = torch.tensor([-10.0, -41.0, -7.0])
    loss, r_c, r_r = preference_loss(seq, rej, seq.clone(), rej.clone(), 0.1, loss_type, eps)
    torch.testing.assert_close(loss, torch.full((3,), expected))
    assert (r_c == 0).all() and (r_r == 0).all()


def test_gradient_raises_chosen_and_lowers_rejected():
    pc, pr = POL_C.clone().requires_grad_(True), POL_R.clone().requires_grad_(True)
    loss, _, _ = preference_loss(pc, pr, REF_C.requires_grad_(False), REF_R, 0.5)
    loss.sum().backward()
    assert pc.grad.item() < 0 < pr.grad.item()  # descending the loss raises chosen, lowers rejected
    # d/dpc -log sigma(beta h) = -beta sigma(-beta h)
    assert pc.grad.item() == pytest.approx(-0.5 * torch.sigmoid(torch.tensor(-1.0)).item())


def test_no_gradient_through_the_reference():
    ref = REF_C.clone().requires_grad_(True)
    pc = POL_C.clone().requires_grad_(True)
    preference_loss(pc, POL_R, ref, REF_R, 0.5)[0].sum().backward()
    assert ref.grad is None


def test_bad_options():
    with pytest.raises(ValueError, match="unknown loss_type"):
        preference_loss(POL_C, POL_R, REF_C, REF_R, 0.1, "kto")
    with pytest.raises(ValueError, match="applies to loss_type cdpo or robust"):
        preference_loss(POL_C, POL_R, REF_C, REF_R, 0.1, "sigmoid", 0.1)
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        preference_loss(POL_C, POL_R, REF_C, REF_R, 0.1, "robust", 0.5)
    with pytest.raises(ValueError, match="beta must be positive"):
        preference_loss(POL_C, POL_R, REF_C, REF_R, 0.0)


def test_sequence_logprobs_sum_and_mean_over_the_mask_only():
    logp = torch.tensor([[-1.0, -2.0, -3.0, -4.0], [-0.5, float("nan"), -1.5, float("-inf")]])
    mask = torch.tensor([[False, True, True, False], [True, False, True, False]])
    torch.testing.assert_close(sequence_logprobs(logp, mask), torch.tensor([-5.0, -2.0]))
    # the mean divides by the masked count (2 and 2), not by T or by the unmasked count
    torch.testing.assert_close(sequence_logprobs(logp, mask, average=True), torch.tensor([-2.5, -1.0]))
    assert sft_loss(logp, mask).item() == pytest.approx(7.0 / 4)
    with pytest.raises(ValueError, match="differ in shape"):
        sequence_logprobs(logp, mask[:, :3])


def _lm_batch():
    torch.manual_seed(0)
    model = CodecLM(CodecLMConfig(text_vocab_size=10, speech_vocab_size=20, d_model=16, n_layers=1, n_heads=2,
                                  d_ff=32, dropout=0.0, max_len=64)).eval()
    text = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0]])
    text_lens = torch.tensor([4, 2])
    speech = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]])  # row 0: 2 prompt + 4 targets; row 1: 1 + 2
    speech_lens = torch.tensor([6, 3])
    prompt_lens = torch.tensor([2, 1])
    return model, (text, text_lens, speech, speech_lens, prompt_lens)


def test_masking_with_codec_lm_token_logprobs():
    model, (text, text_lens, speech, speech_lens, prompt_lens) = _lm_batch()
    with torch.no_grad():
        out = model(text, text_lens, speech, speech_lens, prompt_lens)
        logp, mask = model.token_logprobs(text, text_lens, speech, speech_lens, prompt_lens)
    # predicted: targets after the prompt and <eos>; not the prompt, not the padding
    expected = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    seq, avg = sequence_logprobs(logp, mask), sequence_logprobs(logp, mask, average=True)
    torch.testing.assert_close(avg, seq / torch.tensor([5.0, 3.0]))

    # huge logits at the prompt and padding positions: per-token log-probs there change, the loss does not
    logits = out.logits.clone()
    logits[~mask] += torch.randn_like(logits[~mask]) * 1e4
    logp_big = logits.log_softmax(-1).gather(-1, out.target[..., None]).squeeze(-1)
    assert not torch.allclose(logp_big[~mask], logp[~mask])
    torch.testing.assert_close(sequence_logprobs(logp_big, mask), seq)
    torch.testing.assert_close(sequence_logprobs(logp_big, mask, average=True), avg)
    ref = seq.detach() - 1.0
    a = preference_loss(seq[:1], seq[1:], ref[:1], ref[1:], 0.1)[0]
    b = preference_loss(sequence_logprobs(logp_big, mask)[:1], sequence_logprobs(logp_big, mask)[1:],
                        ref[:1], ref[1:], 0.1)[0]
    torch.testing.assert_close(a, b)

    # other ids in the text and speech padding: the same log-probs
    text2, speech2 = text.clone(), speech.clone()
    text2[1, 2:] = 9
    speech2[1, 3:] = 19
    with torch.no_grad():
        logp2, mask2 = model.token_logprobs(text2, text_lens, speech2, speech_lens, prompt_lens)
    assert torch.equal(mask2, mask)
    torch.testing.assert_close(sequence_logprobs(logp2, mask2), seq)


def test_ipo_is_length_normalized_as_in_trl():
    # Two pairs of token log-probs of different lengths (mask: the completion tokens). TRL's IPO
    # (DPOTrainer, loss_type="ipo") divides each sequence's summed log-prob by its completion
    # length, then loss = (h - 1/(2 beta))^2 with h the difference of the averaged log-ratios.
    pol = torch.tensor([[-1.0, -2.0, -3.0, 0.0], [-0.5, -0.5, 0.0, 0.0],     # pair 0: chosen (3), rejected (2)
                        [-2.0, -2.0, -2.0, -2.0], [-1.0, 0.0, 0.0, 0.0]])    # pair 1: chosen (4), rejected (1)
    ref = torch.tensor([[-2.0, -2.0, -2.0, 0.0], [-1.0, -1.0, 0.0, 0.0],
                        [-1.0, -1.0, -1.0, -1.0], [-3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    beta = 0.5
    # by hand: pair 0: chosen mean -2 vs ref -2 -> 0; rejected -0.5 vs -1 -> +0.5; h = -0.5
    #          pair 1: chosen -2 vs -1 -> -1; rejected -1 vs -3 -> +2; h = -3;  1/(2 beta) = 1
    expected = torch.tensor([(-0.5 - 1.0) ** 2, (-3.0 - 1.0) ** 2])  # 2.25, 16
    B = 2
    p = sequence_logprobs(pol, mask, average=resolve_average("ipo"))
    r = sequence_logprobs(ref, mask, average=resolve_average("ipo"))
    chosen, rejected = torch.tensor([0, 2]), torch.tensor([1, 3])
    loss, r_c, r_r = preference_loss(p[chosen], p[rejected], r[chosen], r[rejected], beta, "ipo")
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(r_c, torch.tensor([0.0, -0.5]))  # beta x averaged log-ratio, as TRL's rewards
    assert loss.shape == (B,)
    # summed log-probs would give pair 0 h = (-6 + 6) - (-1 + 2) = -1 -> 4, not 2.25: a different loss
    s = sequence_logprobs(pol, mask)
    sr = sequence_logprobs(ref, mask)
    assert preference_loss(s[:1], s[1:2], sr[:1], sr[1:2], beta, "ipo")[0].item() == pytest.approx(4.0)


def test_average_defaults_by_loss_type_and_ipo_refuses_sums():
    assert resolve_average("ipo") is True and resolve_average("ipo", True) is True
    for loss_type in ("sigmoid", "cdpo", "robust", "hinge"):
        assert resolve_average(loss_type) is False and resolve_average(loss_type, True) is True
    with pytest.raises(ValueError, match="ipo needs length-normalized log-probs"):
        resolve_average("ipo", False)
    with pytest.raises(ValueError, match="ipo needs length-normalized"):
        check_preference_options(0.1, "ipo", average=False)
    check_preference_options(0.1, "ipo")  # unset: fine


def test_align_options_resolve_average():
    from ttsrl.align.trainer import AlignOptions
    from ttsrl.utils.config import ConfigError

    common = {"method": "dpo", "init_lm": "lm.pt", "token_dir": "tok", "pairs": "pairs.jsonl"}
    assert AlignOptions(**common, loss_type="ipo").average is True
    assert AlignOptions(**common).average is False  # sigmoid: Rafailov et al.'s sums
    assert AlignOptions(**common, average=True).average is True
    with pytest.raises(ConfigError, match="summed log-probs are refused"):
        AlignOptions(**common, loss_type="ipo", average=False)
