import torch

from ttsrl.feats.augment import spec_augment


def test_bands_and_spans_are_bounded_and_stay_inside_each_utterance():
    torch.manual_seed(1)
    x = torch.ones(4, 30, 80)
    lens = torch.tensor([30, 20, 10, 3])
    y = spec_augment(x, lens, freq_masks=2, freq_width=5, time_masks=2, time_width=4)
    zeros = y == 0
    assert 0 < zeros.float().mean() < 0.5
    band = zeros.all(dim=1)  # (B, F): bins masked at every frame
    assert band.any() and (band.sum(1) <= 10).all()
    span = zeros.all(dim=2)  # (B, T): frames masked in every bin
    assert (span.sum(1) <= 8).all()
    for b, n in enumerate(lens.tolist()):
        assert not span[b, n:].any()  # no time span starts in the padding


def test_per_utterance_time_widths_and_no_masks():
    torch.manual_seed(0)
    x = torch.randn(2, 200, 8)
    lens = torch.tensor([200, 100])
    y = spec_augment(x, lens, 0, 0, time_masks=1, time_width=torch.tensor([0, 50]))
    span = (y == 0).all(dim=2)
    assert span[0].sum() == 0 and span[1].sum() <= 50
    assert torch.equal(spec_augment(x, lens, 0, 10, 0, 20), x)
