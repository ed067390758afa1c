"""Tests of ttsrl.train.sampler.BucketBatchSampler."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ttsrl.train.sampler import BucketBatchSampler, build_loader


@pytest.fixture
def lengths():
    return np.random.default_rng(0).integers(1, 50, size=203).tolist()


def padded(batch, lengths):
    return max(lengths[i] for i in batch) * len(batch)


def test_batches_respect_max_tokens_and_cover_every_index_once(lengths):
    s = BucketBatchSampler(lengths, max_tokens=120, shuffle=True, seed=1, num_replicas=1, rank=0)
    s.set_epoch(3)
    batches = list(s)
    assert len(batches) == len(s) == s.num_batches
    assert all(padded(b, lengths) <= 120 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    # buckets are tight: merging two neighbouring batches (in length order) would overflow
    by_len = sorted(s.batches, key=lambda b: max(lengths[i] for i in b))
    for a, b in zip(by_len, by_len[1:], strict=False):
        assert padded(a + b, lengths) > 120


def test_shuffle_is_deterministic_per_epoch(lengths):
    a = BucketBatchSampler(lengths, 120, seed=7, num_replicas=1, rank=0)
    b = BucketBatchSampler(lengths, 120, seed=7, num_replicas=1, rank=0)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b)
    b.set_epoch(2)
    assert list(a) != list(b)
    c = BucketBatchSampler(lengths, 120, seed=8, num_replicas=1, rank=0)
    c.set_epoch(1)
    assert list(a) != list(c)
    unshuffled = BucketBatchSampler(lengths, 120, shuffle=False, num_replicas=1, rank=0)
    assert list(unshuffled) == unshuffled.batches


@pytest.mark.parametrize("replicas", [2, 3])
def test_ranks_get_equal_batch_counts_covering_everything(lengths, replicas):
    samplers = [BucketBatchSampler(lengths, 120, seed=1, num_replicas=replicas, rank=r) for r in range(replicas)]
    for s in samplers:
        s.set_epoch(5)
    per_rank = [list(s) for s in samplers]
    assert len({len(b) for b in per_rank}) == 1
    assert len(per_rank[0]) == -(-len(samplers[0].batches) // replicas)
    seen = [tuple(b) for batches in per_rank for b in batches]
    all_batches = {tuple(b) for b in samplers[0].batches}
    assert set(seen) == all_batches  # the union covers every batch (so every index)
    assert len(seen) - len(set(seen)) == len(seen) - len(all_batches) < replicas  # only padding repeats
    # ranks see different batches
    assert per_rank[0][0] != per_rank[1][0]


def test_drop_last_drops_the_uneven_tail(lengths):
    samplers = [BucketBatchSampler(lengths, 120, seed=1, drop_last=True, num_replicas=2, rank=r) for r in range(2)]
    n = len(samplers[0].batches)
    assert all(len(s) == n // 2 for s in samplers)
    seen = [i for s in samplers for b in s for i in b]
    assert len(seen) == len(set(seen))  # nothing repeated
    with pytest.raises(ValueError, match="drop_last"):
        BucketBatchSampler([5, 5], 10, drop_last=True, num_replicas=4, rank=0)


def test_start_batch_resumes_mid_epoch(lengths):
    s = BucketBatchSampler(lengths, 120, seed=1, num_replicas=2, rank=1)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=3)
    assert len(s) == len(full) - 3 and list(s) == full[3:]
    s.set_epoch(3)
    assert len(s) == len(full)
    with pytest.raises(ValueError):
        s.set_epoch(3, start_batch=len(full) + 1)


def test_overlong_item_is_its_own_batch_and_warns_once(caplog):
    with caplog.at_level(logging.WARNING, logger="ttsrl.train.sampler"):
        s = BucketBatchSampler([3, 500, 4, 700, 2], max_tokens=100, shuffle=False, num_replicas=1, rank=0)
    assert [b for b in s.batches if len(b) == 1 and b[0] in (1, 3)] == [[1], [3]]
    assert len([r for r in caplog.records if "longer than max_tokens" in r.getMessage()]) == 1
    assert sorted(i for b in s for i in b) == [0, 1, 2, 3, 4]


def test_bad_arguments():
    with pytest.raises(ValueError):
        BucketBatchSampler([], 10)
    with pytest.raises(ValueError):
        BucketBatchSampler([1, -1], 10)
    with pytest.raises(ValueError):
        BucketBatchSampler([1], 0)
    with pytest.raises(ValueError):
        BucketBatchSampler([1], 10, num_replicas=2, rank=2)


def test_with_dataloader():
    lengths = [3, 1, 4, 1, 5, 9, 2, 6]
    ds = TensorDataset(torch.arange(8))
    loader = build_loader(ds, lengths, max_tokens=10, shuffle=True, seed=0)
    loader.batch_sampler.set_epoch(1)
    got = sorted(int(i) for (b,) in loader for i in b)
    assert got == list(range(8))
    assert len(loader) == len(loader.batch_sampler)
    assert isinstance(loader, DataLoader)
