"""AAM-softmax and the speaker-verification loss, against values computed by hand."""
import math

import pytest
import torch
import torch.nn.functional as F

from ttsrl.losses.speaker import aam_softmax_loss, speaker_cosine_loss


def test_aam_softmax_by_hand():
    cos = torch.tensor([[0.8, 0.1, -0.2]])
    m, s = 0.2, 10.0
    target = math.cos(math.acos(0.8) + m)
    logits = [s * target, s * 0.1, s * -0.2]
    expected = -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert float(aam_softmax_loss(cos, torch.tensor([0]), m, s)) == pytest.approx(expected, rel=1e-5)


def test_aam_without_margin_is_the_scaled_softmax():
    cos = torch.tensor([[0.3, 0.5], [0.9, -0.4]])
    labels = torch.tensor([1, 0])
    torch.testing.assert_close(aam_softmax_loss(cos, labels, 0.0, 5.0), F.cross_entropy(5.0 * cos, labels))


def test_aam_past_pi_minus_margin_keeps_decreasing():
    # theta_y > pi - m: the target logit is cos(theta) - m sin(m), lower for a larger angle
    m = 0.5
    a = aam_softmax_loss(torch.tensor([[-0.95, 0.0]]), torch.tensor([0]), m, 1.0)
    b = aam_softmax_loss(torch.tensor([[-0.99, 0.0]]), torch.tensor([0]), m, 1.0)
    target = -0.95 - m * math.sin(m)
    expected = -target + math.log(math.exp(target) + 1.0)
    assert float(a) == pytest.approx(expected, rel=1e-5)
    assert float(b) > float(a)


def test_speaker_cosine_loss():
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    ref = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    assert float(speaker_cosine_loss(e, ref)) == pytest.approx((0.0 + 1.0) / 2)
    with pytest.raises(ValueError, match="one shape"):
        speaker_cosine_loss(e, ref[:1])
