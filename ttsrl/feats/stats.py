"""Global mean / standard deviation of features, and the GlobalMVN module that applies them.

Statistics are accumulated in float64 by merging per-utterance means and sums of squared
deviations (Chan et al.'s parallel form of Welford's algorithm), so they are exact for any
number of frames and any split: the stats of JOB shards merged equal the stats of the
whole set. The ``.npz`` file holds

=========  ======  ==========================================================
``count``  int64   number of frames
``mean``   (D,)    per-dimension mean (float64)
``std``    (D,)    per-dimension population standard deviation (ddof = 0)
``m2``     (D,)    sum of squared deviations from the mean, kept for merging
=========  ======  ==========================================================

Normalizing features matters in practice: a CTC model trained on raw log-mels stayed on
a loss plateau for about a thousand steps where the normalized one did not.

Usage::

    from ttsrl.feats.stats import FeatStats, GlobalMVN, merge_stats_files

    acc = FeatStats()
    for feats in ...:                 # (T, D) arrays
        acc.update(feats)
    acc.save("dump/feats/train/stats.npz")
    merge_stats_files(["split/1/stats.npz", "split/2/stats.npz"]).save("stats.npz")

    mvn = GlobalMVN("dump/feats/train/stats.npz")               # features on the last axis
    y = mvn(x)                                                  # x: (B, T, D)
    mvn_mel = GlobalMVN("stats.npz", feat_axis=1)               # x: (B, n_mels, T)
    x_again = mvn_mel.inverse(mvn_mel(x))
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ttsrl.utils.fileio import atomic_path


class FeatStats:
    """Streaming per-dimension count, mean and sum of squared deviations (float64)."""

    def __init__(self, dim: int | None = None):
        self.count = 0
        self.mean = None if dim is None else np.zeros(dim, dtype=np.float64)
        self.m2 = None if dim is None else np.zeros(dim, dtype=np.float64)

    @property
    def dim(self) -> int | None:
        return None if self.mean is None else int(self.mean.shape[0])

    def _merge(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        if count == 0:
            return
        if self.mean is None or self.count == 0:
            self.count, self.mean, self.m2 = count, mean.copy(), m2.copy()
            return
        if mean.shape != self.mean.shape:
            raise ValueError(
                f"FeatStats: feature dimension {mean.shape[0]} does not match {self.mean.shape[0]}"
            )
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    def update(self, feats: np.ndarray) -> None:
        """Add the frames of ``feats`` ``(T, D)``."""
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"FeatStats.update: expected (T, D) features, got shape {x.shape}")
        if x.shape[0] == 0:
            return
        mean = x.mean(axis=0)
        self._merge(x.shape[0], mean, ((x - mean) ** 2).sum(axis=0))

    def merge(self, other: FeatStats) -> FeatStats:
        """Add another accumulator's frames to this one; returns self."""
        if other.mean is not None:
            self._merge(other.count, other.mean, other.m2)
        return self

    @property
    def var(self) -> np.ndarray:
        self._require()
        return self.m2 / self.count

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def _require(self) -> None:
        if self.mean is None or self.count == 0:
            raise ValueError("FeatStats: no frames accumulated")

    def save(self, path: str | os.PathLike) -> None:
        """Write ``count, mean, std, m2`` to an ``.npz`` file atomically."""
        self._require()
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, count=np.int64(self.count), mean=self.mean, std=self.std, m2=self.m2)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatStats:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"stats file not found: {path}")
        with np.load(path) as z:
            missing = {"count", "mean", "std"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not a stats file (missing {', '.join(sorted(missing))})")
            acc = cls()
            acc.count = int(z["count"])
            acc.mean = z["mean"].astype(np.float64)
            # files without m2 (written elsewhere) still merge exactly: m2 = count * std^2
            acc.m2 = (
                z["m2"].astype(np.float64)
                if "m2" in z.files
                else acc.count * z["std"].astype(np.float64) ** 2
            )
        return acc


def merge_stats_files(paths: Iterable[str | os.PathLike]) -> FeatStats:
    """Merge the stats files of several shards (e.g. one per JOB) into one accumulator."""
    acc = FeatStats()
    for p in paths:
        acc.merge(FeatStats.load(p))
    acc._require()
    return acc


class GlobalMVN(nn.Module):
    """``(x - mean) / std`` along ``feat_axis``; :meth:`inverse` undoes it.

    ``mean`` and ``std`` are buffers, so they travel with ``.to(device)`` and are saved in
    the model's state dict (a checkpoint normalizes the same way without the stats file).
    ``std`` is floored at ``eps``. Built with only ``dim`` it is the identity until a
    state dict (e.g. a checkpoint's) is loaded into it.
    """

    def __init__(
        self,
        stats_file: str | os.PathLike | None = None,
        mean: np.ndarray | torch.Tensor | None = None,
        std: np.ndarray | torch.Tensor | None = None,
        feat_axis: int = -1,
        dim: int | None = None,
        norm_means: bool = True,
        norm_vars: bool = True,
        eps: float = 1e-5,
    ):
        super().__init__()
        if stats_file is not None:
            if mean is not None or std is not None:
                raise ValueError("GlobalMVN: give stats_file or mean/std, not both")
            acc = FeatStats.load(stats_file)
            mean, std = acc.mean, acc.std
        if mean is None and std is None and dim is not None:
            mean, std = np.zeros(dim), np.ones(dim)
        if mean is None or std is None:
            raise ValueError("GlobalMVN: needs stats_file, both mean and std, or dim")
        mean_t = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        std_t = torch.as_tensor(np.asarray(std), dtype=torch.float32).clamp(min=eps)
        if mean_t.shape != std_t.shape or mean_t.dim() != 1:
            raise ValueError(
                f"GlobalMVN: mean {tuple(mean_t.shape)} and std {tuple(std_t.shape)} must be (D,)"
            )
        if not norm_means:
            mean_t = torch.zeros_like(mean_t)
        if not norm_vars:
            std_t = torch.ones_like(std_t)
        self.feat_axis = feat_axis
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def set_stats(self, stats: str | os.PathLike | GlobalMVN) -> None:
        """Take the mean/std of ``stats`` (a ``stats.npz`` or a GlobalMVN) into this module's buffers.

        A model that holds its normalization calls it when training starts (the buffers are
        then saved with its weights); the dimension must be the model's.
        """
        mvn = stats if isinstance(stats, GlobalMVN) else GlobalMVN(stats)
        if mvn.mean.shape != self.mean.shape:
            raise ValueError(f"stats of dimension {mvn.mean.shape[0]}, the model expects {self.mean.shape[0]}")
        with torch.no_grad():
            self.mean.copy_(mvn.mean)
            self.std.copy_(mvn.std)

    def _shape(self, x: torch.Tensor) -> list[int]:
        axis = self.feat_axis % x.dim()
        if x.shape[axis] != self.mean.shape[0]:
            raise ValueError(
                f"GlobalMVN: axis {self.feat_axis} of input {tuple(x.shape)} is not the feature dimension {self.mean.shape[0]}"
            )
        shape = [1] * x.dim()
        shape[axis] = -1
        return shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = self._shape(x)
        return (x - self.mean.view(shape)) / self.std.view(shape)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        shape = self._shape(y)
        return y * self.std.view(shape) + self.mean.view(shape)

    def extra_repr(self) -> str:
        return f"dim={self.mean.shape[0]}, feat_axis={self.feat_axis}"
