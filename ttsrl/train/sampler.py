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

    # every group of 2 batches twice (GRPO's policy updates per sampled batch); batches get "repeat", "slot"
    loader = build_loader(dataset, lengths, max_tokens=8000, collate_fn=collate, repeats=2, repeat_group=2)
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

__all__ = ["BucketBatchSampler", "RepeatTagged", "RepeatedBatchSampler", "build_loader", "make_batches"]


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


class RepeatedBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Every run of ``group`` consecutive batches of ``base`` yielded ``repeats`` times in a row.

    Online RL makes several policy updates on one batch of samples (GRPO's mu, Shao et al. 2024,
    Algorithm 1); with gradient accumulation the samples of ``group`` batches make one update, so
    the run of ``group`` batches is what repeats: ``b1 b2 | b1 b2`` for ``repeats=2, group=2``.
    Each index becomes ``(index, repeat, slot)``: the pass over the run (0 = first) and the batch's
    place in it, which :class:`RepeatTagged` puts into the items (and the collate function into the
    batch), so that the loss knows when to sample and which samples to reuse. With ``group > 1``
    and ``repeats > 1`` a last run shorter than ``group`` is dropped (it would share one update
    with its own repeat), unless the epoch has no full run. ``set_epoch(epoch, start_batch)``
    counts the repeated batches, so a resumed run continues in the middle of a run.
    """

    def __init__(self, base: BucketBatchSampler, repeats: int = 1, group: int = 1):
        if repeats < 1 or group < 1:
            raise ValueError(f"RepeatedBatchSampler: repeats ({repeats}) and group ({group}) must be >= 1")
        self.base, self.repeats, self.group = base, int(repeats), int(group)
        self.epoch = 0
        self.start_batch = 0

    def _plan(self) -> list[tuple[int, int, int]]:
        """``(position in base's epoch, repeat, slot)`` of every batch of the epoch."""
        self.base.set_epoch(self.epoch)
        n = len(self.base)
        runs = [list(range(s, min(s + self.group, n))) for s in range(0, n, self.group)]
        if self.group > 1 and self.repeats > 1 and len(runs) > 1 and len(runs[-1]) < self.group:
            runs.pop()
        return [(pos, k, slot) for run in runs for k in range(self.repeats) for slot, pos in enumerate(run)]

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = int(epoch)
        n = len(self._plan())
        if not 0 <= start_batch <= n:
            raise ValueError(f"start_batch {start_batch} not in [0, {n}]")
        self.start_batch = int(start_batch)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        plan = self._plan()
        batches = list(self.base)
        for pos, k, slot in plan[self.start_batch :]:
            yield [(i, k, slot) for i in batches[pos]]

    def __len__(self) -> int:
        return len(self._plan()) - self.start_batch


class RepeatTagged(Dataset):
    """``dataset[(index, repeat, slot)]``: the item of ``dataset`` with ``repeat`` and ``slot`` added
    (:class:`RepeatedBatchSampler`'s indices); ``collate(items)`` adds them to the batch."""

    def __init__(self, dataset: Dataset, collate_fn: Callable[[list[Any]], Any] | None):
        self.dataset, self.collate_fn = dataset, collate_fn

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: tuple[int, int, int]) -> dict:
        i, k, slot = idx
        return {**self.dataset[i], "repeat": k, "slot": slot}

    def collate(self, items: list[dict]) -> dict:
        tags = {(it["repeat"], it["slot"]) for it in items}
        if len(tags) != 1:
            raise ValueError(f"a batch mixes repeats or slots {sorted(tags)}")
        k, slot = tags.pop()
        rest = [{key: v for key, v in it.items() if key not in ("repeat", "slot")} for it in items]
        batch = self.collate_fn(rest) if self.collate_fn is not None else rest
        return {**batch, "repeat": k, "slot": slot}


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
    repeats: int | None = None,
    repeat_group: int = 1,
) -> DataLoader:
    """A DataLoader over a :class:`BucketBatchSampler` for this process's rank.

    ``repeats``: every run of ``repeat_group`` batches is yielded that many times in a row, and
    each batch (a mapping) gets ``"repeat"`` and ``"slot"`` (:class:`RepeatedBatchSampler`);
    None: plain batches.
    """
    sampler: Sampler = BucketBatchSampler(lengths, max_tokens, shuffle=shuffle, seed=seed, drop_last=drop_last)
    if repeats is not None:
        sampler = RepeatedBatchSampler(sampler, repeats, repeat_group)
        tagged = RepeatTagged(dataset, collate_fn)
        dataset, collate_fn = tagged, tagged.collate
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=False,
    )
