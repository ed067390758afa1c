"""Utterance datasets over kaldiio scp files and Kaldi integer-sequence files, with padding collate.

A :class:`UttDataset` joins, by utterance id, any number of named *fields*:

* an ``.scp`` path: kaldiio arrays (features ``(T, D)``, speech tokens ``(T,)``, ...),
  read lazily when an item is indexed;
* any other path: a Kaldi text file of integers, ``<utt> <id> <id> ...`` (text token ids,
  as ``ttsrl.bin.tokenize_text`` writes them), held in memory as int64 arrays;
* a mapping ``{utt: array or list}`` already in memory.

The utterances are those of the first field (or ``utts``); one missing from another
field is an error naming the utterance and the field's file. An item is
``{"utt": str, <field>: np.ndarray, ...}``; :func:`collate_pad` pads every array field to
the longest in the batch along its first axis and adds ``<field>_lens``.

Usage::

    from ttsrl.data.dataset import UttDataset, collate_pad
    from ttsrl.train.sampler import build_loader

    ds = UttDataset({"feats": "dump/feats/train/feats.scp", "text": "dump/tokens/train/text"})
    lengths = ds.lengths("feats", "dump/feats/train/utt2num_frames")
    loader = build_loader(ds, lengths, max_tokens=20000, collate_fn=collate_pad)
    batch = next(iter(loader))
    # {"utts": [...], "feats": (B, T, 80) float32, "feats_lens": (B,), "text": (B, L) int64, "text_lens": (B,)}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ttsrl.data.arrays import read_scp
from ttsrl.data.datadir import DataDirError, read_kv, sorted_ids

__all__ = ["UttDataset", "collate_pad", "pad_arrays", "read_int_seqs"]

FieldSource = str | os.PathLike | Mapping[str, Any]


def read_int_seqs(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``<utt> <int> <int> ...`` lines into ``{utt: int64 array}``; bad lines name file and line."""
    out: dict[str, np.ndarray] = {}
    for lineno, (utt, value) in enumerate(read_kv(path, allow_empty_value=True).items(), 1):
        try:
            out[utt] = np.array([int(v) for v in value.split()], dtype=np.int64)
        except ValueError:
            raise DataDirError(f"{path}: utterance '{utt}' (entry {lineno}): expected integers, got {value!r}") from None
    return out


class UttDataset(Dataset):
    """Named per-utterance fields joined by utterance id; see the module docstring.

    Args:
        fields: ``{name: source}``; the first field's utterances define the dataset
            unless ``utts`` is given.
        utts: the utterances to use (in this order); each must be in every field.
    """

    def __init__(self, fields: Mapping[str, FieldSource], utts: Sequence[str] | None = None):
        if not fields:
            raise ValueError("UttDataset: no fields")
        self.sources: dict[str, str] = {}
        self.fields: dict[str, Mapping[str, Any]] = {}
        for name, src in fields.items():
            if isinstance(src, Mapping):
                self.fields[name], self.sources[name] = src, f"<{name} in memory>"
            else:
                path = os.fspath(src)
                self.fields[name] = read_scp(path) if path.endswith(".scp") else read_int_seqs(path)
                self.sources[name] = path
        first = next(iter(self.fields))
        self.utts: list[str] = list(utts) if utts is not None else sorted_ids(self.fields[first].keys())
        for name, table in self.fields.items():
            missing = [u for u in self.utts if u not in table]
            if missing:
                more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                raise DataDirError(f"{self.sources[name]}: no entry for utterance '{missing[0]}'{more}")

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict[str, Any]:
        utt = self.utts[i]
        item: dict[str, Any] = {"utt": utt}
        for name, table in self.fields.items():
            item[name] = np.asarray(table[utt])
        return item

    def lengths(self, name: str, lengths_file: str | os.PathLike | None = None) -> np.ndarray:
        """First-axis length of field ``name`` per utterance (dataset order).

        ``lengths_file`` (``<utt> <n>``, e.g. ``utt2num_frames``) avoids reading every array.
        """
        if lengths_file is not None:
            table = read_kv(lengths_file)
            missing = [u for u in self.utts if u not in table]
            if missing:
                raise DataDirError(f"{lengths_file}: no entry for utterance '{missing[0]}'")
            try:
                return np.array([int(table[u]) for u in self.utts], dtype=np.int64)
            except ValueError as e:
                raise DataDirError(f"{lengths_file}: not an integer length: {e}") from None
        table = self.fields[name]
        return np.array([np.asarray(table[u]).shape[0] for u in self.utts], dtype=np.int64)


class FramesDataset(Dataset):
    """A :class:`UttDataset` with the lengths that bucket it (``lengths``, e.g. its frame counts), as the
    training tasks' loaders (``ttsrl.train.sampler.build_loader``) read them."""

    def __init__(self, ds: UttDataset, lengths: np.ndarray):
        self.ds, self.lengths, self.utts, self.fields = ds, lengths, ds.utts, ds.fields

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.ds[i]


def pad_arrays(arrays: Sequence[np.ndarray | torch.Tensor], pad_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack arrays of shapes ``(T_i, ...)`` into ``(B, max T_i, ...)`` and their lengths ``(B,)``."""
    lens = torch.tensor([a.shape[0] for a in arrays], dtype=torch.long)
    if all(isinstance(a, np.ndarray) for a in arrays):  # (kaldiio arrays may be read-only: copy in numpy)
        out_np = np.full((len(arrays), int(lens.max()), *arrays[0].shape[1:]), pad_value, dtype=arrays[0].dtype)
        for i, a in enumerate(arrays):
            out_np[i, : a.shape[0]] = a
        return torch.from_numpy(out_np), lens
    tensors = [torch.as_tensor(a) for a in arrays]
    out = tensors[0].new_full((len(tensors), int(lens.max()), *tensors[0].shape[1:]), pad_value)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out, lens


def collate_pad(items: Sequence[Mapping[str, Any]], pad_values: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Batch items of :class:`UttDataset`: ``utts`` (list), each array field padded, ``<field>_lens``.

    Float arrays stay float32, integer arrays become int64; padding is 0 unless
    ``pad_values[field]`` says otherwise.
    """
    pad_values = pad_values or {}
    batch: dict[str, Any] = {"utts": [it["utt"] for it in items]}
    for key in items[0]:
        if key == "utt":
            continue
        arrays = []
        for it in items:
            a = np.asarray(it[key])
            arrays.append(a.astype(np.float32, copy=False) if a.dtype.kind == "f" else a.astype(np.int64, copy=False))
        batch[key], batch[f"{key}_lens"] = pad_arrays(arrays, pad_values.get(key, 0))
    return batch
