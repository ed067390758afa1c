"""Sampled candidates of a samples dir (stage 5): keys ``<utt>-c<k>`` and their speech tokens.

Usage::

    cands = read_candidates("exp/base/samples/dev")     # {"<utt>-c<k>": token ids}, job shards merged
    utt, k = parse_candidate_key("utt1-c3")              # ("utt1", 3)
"""
from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from glob import glob

import numpy as np

from ttsrl.data.arrays import read_scp
from ttsrl.data.datadir import DataDirError

__all__ = ["candidate_sort_key", "parse_candidate_key", "read_candidates"]


def parse_candidate_key(key: str) -> tuple[str, int]:
    """``"<utt>-c<k>"`` -> ``(utt, k)``; ValueError otherwise."""
    utt, sep, k = key.rpartition("-c")
    if not sep or not utt or not k.isdigit():
        raise ValueError(f"candidate key {key!r} is not <utt>-c<k>")
    return utt, int(k)


def candidate_sort_key(key: str) -> tuple[str, int]:
    return parse_candidate_key(key)


def read_candidates(samples_dir: str) -> Mapping[str, np.ndarray]:
    """The candidates' tokens: ``tokens.scp``, or the job shards ``tokens.<n>.scp`` merged (lazy)."""
    one = os.path.join(samples_dir, "tokens.scp")
    if os.path.isfile(one):
        return read_scp(one)
    shards = sorted(glob(os.path.join(samples_dir, "tokens.*.scp")))
    if not shards:
        raise DataDirError(f"{samples_dir}: no tokens.scp (nor tokens.<job>.scp shards)")
    return ChainMap(*[read_scp(s) for s in shards])
