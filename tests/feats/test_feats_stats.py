"""ttsrl.feats.stats: streaming stats equal numpy's, merging shards, GlobalMVN."""

import numpy as np
import pytest
import torch

from ttsrl.feats.stats import FeatStats, GlobalMVN, merge_stats_files


def utterances(seed=0, n=7, dim=5):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((rng.integers(1, 50), dim)) * 3 + 10).astype(np.float32) for _ in range(n)]


def test_streaming_equals_numpy():
    utts = utterances()
    acc = FeatStats()
    for u in utts:
        acc.update(u)
    acc.update(np.zeros((0, 5)))  # empty utterances are ignored
    allx = np.concatenate(utts).astype(np.float64)
    assert acc.count == len(allx) and acc.dim == 5
    np.testing.assert_allclose(acc.mean, allx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(acc.std, allx.std(0), rtol=1e-10)


def test_large_offset_is_stable():
    rng = np.random.default_rng(1)
    chunks = [1e6 + rng.standard_normal((1000, 2)) for _ in range(20)]
    acc = FeatStats()
    for c in chunks:
        acc.update(c)
    np.testing.assert_allclose(acc.std, np.concatenate(chunks).std(0), rtol=1e-6)


def test_save_load_and_merge_shards(tmp_path):
    utts = utterances(seed=2)
    paths = []
    for i, shard in enumerate((utts[:3], utts[3:])):
        acc = FeatStats()
        for u in shard:
            acc.update(u)
        paths.append(tmp_path / f"{i}" / "stats.npz")
        acc.save(paths[-1])
    with np.load(paths[0]) as z:
        assert {"count", "mean", "std"} <= set(z.files)
    merged = merge_stats_files(paths)
    allx = np.concatenate(utts).astype(np.float64)
    assert merged.count == len(allx)
    np.testing.assert_allclose(merged.mean, allx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.std, allx.std(0), rtol=1e-10)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        FeatStats().save(tmp_path / "s.npz")
    acc = FeatStats()
    acc.update(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dimension"):
        acc.update(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\(T, D\)"):
        acc.update(np.ones(3))
    with pytest.raises(FileNotFoundError):
        FeatStats.load(tmp_path / "missing.npz")


def test_global_mvn_normalizes_and_inverts(tmp_path):
    utts = utterances(seed=3)
    acc = FeatStats()
    for u in utts:
        acc.update(u)
    acc.save(tmp_path / "stats.npz")
    mvn = GlobalMVN(tmp_path / "stats.npz")
    x = torch.from_numpy(np.concatenate(utts)).unsqueeze(0)  # (1, T, D)
    y = mvn(x)
    assert torch.allclose(y.mean(dim=(0, 1)), torch.zeros(5), atol=1e-4)
    assert torch.allclose(y.std(dim=(0, 1), unbiased=False), torch.ones(5), atol=1e-4)
    assert torch.allclose(mvn.inverse(y), x, atol=1e-5)

    # (B, D, T) layout, as the mel extractor gives
    mvn_bdt = GlobalMVN(tmp_path / "stats.npz", feat_axis=1)
    assert torch.allclose(mvn_bdt(x.transpose(1, 2)), y.transpose(1, 2))
    with pytest.raises(ValueError, match="feature dimension"):
        mvn_bdt(x)

    # stats travel in the state dict: a module built with only dim loads them
    fresh = GlobalMVN(dim=5)
    assert torch.equal(fresh(x), x)
    fresh.load_state_dict(mvn.state_dict())
    assert torch.equal(fresh(x), y)


def test_global_mvn_floors_std():
    mvn = GlobalMVN(mean=np.zeros(2), std=np.array([0.0, 2.0]), eps=1e-3)
    out = mvn(torch.tensor([[1.0, 4.0]]))
    assert torch.isfinite(out).all() and out[0, 1] == 2.0
