"""DiffRO: straight-through Gumbel-Softmax, token KL by hand, which positions the reward reads, the loss."""
import math

import pytest
import torch

from ttsrl.losses.diffro import diffro_loss, gumbel_softmax_st, masked_token_mean, reward_positions, token_kl


def test_gumbel_forward_is_one_hot_and_gradient_reaches_logits():
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 11, requires_grad=True)
    y = gumbel_softmax_st(logits, tau=0.7, generator=torch.Generator().manual_seed(3))
    assert set(y.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(y.detach().sum(-1), torch.ones(4, 7))
    w = torch.randn(11)
    (y * w).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # the backward is exactly the soft sample's: same noise from the same seed
    logits2 = logits.detach().clone().requires_grad_(True)
    u = torch.empty_like(logits2).exponential_(generator=torch.Generator().manual_seed(3))
    soft = ((logits2 - u.log()) / 0.7).softmax(-1)
    (soft * w).sum().backward()
    torch.testing.assert_close(logits.grad, logits2.grad)
    assert torch.equal(y.detach().argmax(-1), soft.detach().argmax(-1))


def test_gumbel_samples_follow_the_softmax():
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1])).expand(4000, 3)
    y = gumbel_softmax_st(logits, tau=2.0, generator=torch.Generator().manual_seed(0))  # tau does not change the argmax
    torch.testing.assert_close(y.mean(0), torch.tensor([0.6, 0.3, 0.1]), atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="tau must be positive"):
        gumbel_softmax_st(logits, tau=0.0)


def test_token_kl_by_hand():
    p = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    q = torch.log(torch.tensor([[[0.25, 0.75], [0.9, 0.1]]]))
    kl = token_kl(p, q)
    assert kl[0, 0].item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75), rel=1e-5)
    assert kl[0, 1].item() == pytest.approx(0.0, abs=1e-6)
    mask = torch.tensor([[True, False]])
    assert masked_token_mean(kl, mask).item() == pytest.approx(kl[0, 0].item())


def test_reward_positions_skip_prompt_eos_and_padding():
    mask = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=torch.bool)
    idx, lens = reward_positions(mask)
    assert lens.tolist() == [2, 1, 0]
    assert idx[0, :2].tolist() == [1, 2] and idx[1, :1].tolist() == [0]
    with pytest.raises(ValueError, match="contiguous"):
        reward_positions(torch.tensor([[1, 0, 1]], dtype=torch.bool))


def _batch(V=6):
    # row 0: prompt at 0, targets at 1-2, <eos> predicted at 3, padding at 4; row 1: target at 0, <eos> at 1
    mask = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    logits = torch.zeros(2, 5, V + 1)
    want = torch.tensor([[0, 3, 1, 0, 0], [4, 0, 0, 0, 0]])
    logits.scatter_(2, want[..., None], 50.0)  # a sure argmax per position
    logits[..., V] = 100.0  # <eos> even surer: it must not be drawn for the reward
    return logits, mask


def test_diffro_reward_reads_the_target_tokens_only():
    V = 6
    logits, mask = _batch(V)
    logits.requires_grad_(True)
    seen = {}
    w = torch.arange(V, dtype=torch.float32)

    def reward_fn(soft, lens):
        seen["soft"], seen["lens"] = soft, lens
        return (soft * w).sum((1, 2))  # reward = sum of token ids

    out = diffro_loss(logits, logits.detach(), mask, reward_fn, tau=1.0, kl_weight=0.5)
    assert seen["soft"].shape == (2, 2, V) and seen["lens"].tolist() == [2, 1]
    assert seen["soft"][0].argmax(-1).tolist() == [3, 1] and seen["soft"][1, 0].argmax().item() == 4
    assert seen["soft"][1, 1].abs().sum() == 0  # past the row's length
    torch.testing.assert_close(out.reward.detach(), torch.tensor([4.0, 4.0]))
    assert out.kl.item() == pytest.approx(0.0, abs=1e-6)  # policy == reference
    assert out.loss.item() == pytest.approx(-4.0, abs=1e-5)
    diffro_loss(logits, None, mask, reward_fn, tau=1.0, kl_weight=0.0).loss.backward()
    g = logits.grad.abs().sum(-1)
    assert (g[0, 1:3] > 0).all() and g[1, 0] > 0
    # the prompt, the <eos> position and padding get no reward gradient
    assert g[0, 0] == 0 and g[0, 3:].sum() == 0 and g[1, 1:].sum() == 0


def test_diffro_kl_term_by_hand():
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    pol = torch.log(torch.tensor([[[0.25, 0.25, 0.5], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]]))
    ref = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.8, 0.1, 0.1]]]))
    out = diffro_loss(pol, ref, mask, lambda soft, lens: torch.zeros(1), kl_weight=2.0)
    kl0 = 0.25 * math.log(0.5) + 0.5 * math.log(2.0)  # position 0; position 1 is 0; position 2 is masked
    assert out.kl.item() == pytest.approx(kl0 / 2, rel=1e-5)
    assert out.loss.item() == pytest.approx(2.0 * kl0 / 2, rel=1e-5)
    with pytest.raises(ValueError, match="needs the reference"):
        diffro_loss(pol, None, mask, lambda soft, lens: torch.zeros(1), kl_weight=1.0)
