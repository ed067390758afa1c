"""FSQ: shapes, the index <-> code bijection, levels per dimension, straight-through gradients."""
import pytest
import torch

from ttsrl.models.quantizer import FSQ, round_ste


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8], [3], [2, 7]])
def test_shapes_and_range(levels):
    fsq = FSQ(levels)
    z = 3 * torch.randn(2, 7, len(levels))
    codes, idx = fsq(z)
    assert codes.shape == (2, 7, len(levels)) and idx.shape == (2, 7)
    assert idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) < fsq.codebook_size
    assert codes.abs().max() <= 1.0
    assert torch.equal(fsq.indices_to_codes(idx), codes)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8], [4, 3]])
def test_indices_codes_round_trip_covers_the_codebook(levels):
    fsq = FSQ(levels)
    idx = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(idx)  # (N, d)
    assert torch.equal(fsq.codes_to_indices(codes), idx)
    assert len({tuple(c) for c in codes.tolist()}) == fsq.codebook_size  # a bijection


def test_each_dimension_takes_exactly_its_levels():
    fsq = FSQ([8, 5, 3])
    codes, _ = fsq(10 * torch.randn(20000, 3))
    assert [len(torch.unique(codes[:, i])) for i in range(3)] == [8, 5, 3]


def test_straight_through_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    enc = torch.nn.Linear(6, 4)
    fsq = FSQ([8, 5, 5, 5])
    codes, _ = fsq(enc(torch.randn(5, 6)))
    (codes * torch.randn_like(codes)).sum().backward()
    assert enc.weight.grad is not None and enc.weight.grad.abs().sum() > 0
    x = torch.tensor([0.4, 1.6], requires_grad=True)
    round_ste(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_bad_levels_and_indices_raise():
    with pytest.raises(ValueError, match="levels"):
        FSQ([8, 1])
    fsq = FSQ([4, 4])
    with pytest.raises(ValueError, match="out of range"):
        fsq.indices_to_codes(torch.tensor([16]))
    with pytest.raises(ValueError, match="dimensions"):
        fsq.codes_to_indices(torch.zeros(3))


def test_no_state_in_state_dict():
    assert FSQ([8, 5, 5, 5]).state_dict() == {}  # the grid is rebuilt from levels
