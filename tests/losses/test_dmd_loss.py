"""DMD loss of DMO: the path inverse, the normalized gradient by hand, the surrogate's gradient, and
a toy 2-D student that moves to the teacher's distribution."""
import math

import pytest
import torch

from ttsrl.losses.dmo import dmd_gradient, dmd_loss, predict_x1
from ttsrl.models.flow import ot_path


@pytest.mark.parametrize("sigma_min", [0.0, 1e-4])
def test_predict_x1_inverts_the_path(sigma_min):
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(3, 2, 5, generator=g), torch.randn(3, 2, 5, generator=g)
    t = torch.tensor([0.0, 0.3, 0.9]).view(3, 1, 1)
    x_t, u = ot_path(x0, x1, t, sigma_min)
    torch.testing.assert_close(predict_x1(x_t, u, t, sigma_min), x1)


def test_dmd_gradient_by_hand():
    # one utterance, 1 channel, 3 frames, the last masked out
    x = torch.tensor([[[1.0, 2.0, 5.0]]])
    real = torch.tensor([[[0.0, 4.0, 0.0]]])
    fake = torch.tensor([[[1.0, 3.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    # mean |x - real| over the masked frames = (1 + 2) / 2 = 1.5; grad = (fake - real) / 1.5
    grad = dmd_gradient(x, real, fake, mask, eps=0.0)
    torch.testing.assert_close(grad, torch.tensor([[[1 / 1.5, -1 / 1.5, 0.0]]]))


def test_dmd_loss_value_and_gradient():
    x = torch.tensor([[[1.0, 2.0, 5.0]]], requires_grad=True)
    real = torch.tensor([[[0.0, 4.0, 0.0]]])
    fake = torch.tensor([[[1.0, 3.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    loss = dmd_loss(x, real, fake, mask)
    g = 1 / (1.5 + 1e-6)
    # 1/2 mean over the 2 masked values of grad^2; d loss / dx = grad / 2 there, 0 elsewhere
    assert float(loss.detach()) == pytest.approx(0.5 * g * g)
    loss.backward()
    torch.testing.assert_close(x.grad, torch.tensor([[[g / 2, -g / 2, 0.0]]]))


def test_identical_scores_give_no_gradient():
    x = torch.randn(2, 3, 4, requires_grad=True)
    real = torch.randn(2, 3, 4)
    loss = dmd_loss(x, real, real.clone(), torch.ones(2, 4, dtype=torch.bool))
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(x.grad.abs().max()) == 0.0


def gaussian_x1(x_t: torch.Tensor, t: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """E[x1 | x_t] for data N(mean, I) on the path x_t = (1 - t) x0 + t x1 (sigma_min 0)."""
    var = (1 - t) ** 2 + t ** 2
    return mean + t / var * (x_t - t * mean)


def test_toy_student_moves_to_the_teacher_distribution():
    """Student G(z) = theta + z; teacher data N(m, I); the fake score is the exact one of the student's
    current distribution N(theta, I). Descending the DMD loss moves theta to m."""
    torch.manual_seed(0)
    m = torch.tensor([2.0, -1.0])
    theta = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=0.5)
    start = float((theta.detach() - m).norm())
    for _ in range(200):
        z = torch.randn(256, 2, 1)
        x = theta.view(1, 2, 1) + z  # (B, C=2, T=1)
        t = torch.rand(256, 1, 1)
        x_t, _ = ot_path(torch.randn_like(x), x.detach(), t, 0.0)
        real = gaussian_x1(x_t, t, m.view(1, 2, 1))
        fake = gaussian_x1(x_t, t, theta.detach().view(1, 2, 1))
        loss = dmd_loss(x, real, fake, torch.ones(256, 1, dtype=torch.bool))
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = float((theta.detach() - m).norm())
    assert start == pytest.approx(math.sqrt(5))
    assert end < 0.1 * start
