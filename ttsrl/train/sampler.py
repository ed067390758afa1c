"""Length-bucketed batching by tokens, sharded across DDP ranks.

Utterances are sorted by length and cut greedily into batches whose padded size
``max_len * batch_size`` stays within ``max_tokens`` (so a batch of short utterances
holds many, a batch of long ones few, and padding is minimal). The batches are fixed;
their order is shuffled per epoch from ``(seed, epoch)`` only, so every rank and every
resumed run sees the same order. Each rank takes every ``num_replicas``-th batch; the
list is padded by repeating batches so that all ranks run the same number of steps.

Usage::

    from ttsrl.train.sampler import BucketBatchSampler, build_loader

    sampler = BucketBatchSampler(lengths, max_tokens=8000, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    for epoch in range(1, n + 1):
        sampler.set_epoch(epoch)          # the Trainer does this
        for batch in loader: ...

    # or, with the rank and world size of the current process group:
    loader = build_loader(dataset, lengths, max_tokens=8000, collate_fn=collate, num_workers=2)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ttsrl.train import distributed as dist_utils

logger = logging.getLogger(__name__)

__all__ = ["BucketBatchSampler", "build_loader", "make_batches"]


def make_batches(lengths: np.ndarray, max_tokens: int) -> tuple[list[list[int]], int]:
    """Greedy length-sorted batches with ``max_len * batch_size <= max_tokens``.

    Returns the batches (indices in ascending length order) and the number of single
    items longer than ``max_tokens`` (each is a batch of its own).
    """
    order = np.argsort(lengths, kind="stable")
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0
    n_long = 0
    for i in order.tolist():
        n = max(int(lengths[i]), 1)  # an empty item still takes a row
        if cur and max(cur_max, n) * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
        if n > max_tokens:
            n_long += 1
    if cur:
        batches.append(cur)
    return batches, n_long


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices bounded by padded size, sharded across ranks.

    Args:
        lengths: length of every item (frames or tokens), in dataset order.
        max_tokens: bound on ``max(length in batch) * batch size``.
        shuffle: shuffle the order of batches every epoch (from ``seed`` and the epoch).
        seed: seed of the shuffle; the same on every rank.
        drop_last: with several ranks, drop the batches left over after an even split
            instead of repeating batches to fill the last round.
        num_replicas, rank: DDP world size and rank (default: the current process group).
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        max_tokens: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.ndim != 1 or len(lengths) == 0:
            raise ValueError("BucketBatchSampler: lengths must be a non-empty 1-D sequence")
        if (lengths < 0).any():
            raise ValueError(f"BucketBatchSampler: negative length at index {int(np.argmax(lengths < 0))}")
        if max_tokens <= 0:
            raise ValueError(f"BucketBatchSampler: max_tokens must be positive, got {max_tokens}")
        self.num_replicas = dist_utils.get_world_size() if num_replicas is None else int(num_replicas)
        self.rank = dist_utils.get_rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"BucketBatchSampler: rank {self.rank} not in [0, {self.num_replicas})")
        self.lengths = lengths
        self.max_tokens = int(max_tokens)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.batches, n_long = make_batches(lengths, self.max_tokens)
        if n_long:
            logger.warning(
                "%d item(s) longer than max_tokens=%d (longest %d) form batches of their own",
                n_long, self.max_tokens, int(lengths.max()),
            )
        n = len(self.batches)
        if drop_last:
            self.num_batches = n // self.num_replicas
            if self.num_batches == 0:
                raise ValueError(
                    f"BucketBatchSampler: {n} batch(es) for {self.num_replicas} ranks with drop_last=True; "
                    "lower max_tokens or set drop_last=False"
                )
        else:
            self.num_batches = math.ceil(n / self.num_replicas)
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order; the next iteration starts at batch ``start_batch``.

        ``start_batch`` counts this rank's batches; it lets a resumed run continue in
        the middle of an epoch without reading the batches it already trained on.
        """
        if not 0 <= start_batch <= self.num_batches:
            raise ValueError(f"start_batch {start_batch} not in [0, {self.num_batches}]")
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def _rank_order(self) -> np.ndarray:
        n = len(self.batches)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        total = self.num_batches * self.num_replicas
        order = order[:total] if total <= n else np.resize(order, total)  # resize repeats from the start
        return order[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        for b in self._rank_order()[self.start_batch :].tolist():
            yield list(self.batches[b])

    def __len__(self) -> int:
        """Batches the next iteration yields on this rank."""
        return self.num_batches - self.start_batch


def build_loader(
    dataset: Dataset,
    lengths: Sequence[int] | np.ndarray,
    max_tokens: int,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader over a :class:`BucketBatchSampler` for this process's rank."""
    sampler = BucketBatchSampler(lengths, max_tokens, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=False,
    )
