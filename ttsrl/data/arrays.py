"""Kaldi ark/scp arrays through kaldiio: features, speech tokens, embeddings.

An ``.ark`` holds ``<key> <binary array>`` records back to back; the ``.scp`` maps each
key to ``<ark path>:<byte offset>`` so any record loads without reading the others.
Float and int32 arrays of any shape are stored (kaldiio's binary format).

Usage::

    from ttsrl.data.arrays import read_scp, write_ark_scp

    write_ark_scp("dump/feats.1.ark", "dump/feats.1.scp", ((utt, mel) for utt, mel in ...))
    feats = read_scp("dump/feats.1.scp")     # lazy: nothing is read until indexed
    mel = feats["spk1-utt1"]                 # np.ndarray
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping

import kaldiio
import numpy as np

from ttsrl.data.datadir import DataDirError
from ttsrl.utils.fileio import atomic_path


def write_ark_scp(
    ark: str | os.PathLike, scp: str | os.PathLike, items: Iterable[tuple[str, np.ndarray]]
) -> int:
    """Write ``(key, array)`` pairs to ``ark`` and an index to ``scp``; returns the count.

    Items are streamed (an iterator is never held in memory). Both files are written
    under temporary names and renamed at the end, ark first, so a reader never sees an
    scp that points into a partial ark; the scp names the final ark path (absolute).
    Raises DataDirError on a duplicate or malformed key.
    """
    ark, scp = os.fspath(ark), os.fspath(scp)
    ark_final = os.path.abspath(ark)
    seen: set[str] = set()
    # the inner block (the ark) is renamed first
    with atomic_path(scp) as scp_tmp, atomic_path(ark_final) as ark_tmp:
        with open(ark_tmp, "wb") as fa, open(scp_tmp, "w", encoding="utf-8") as fs:
            for key, array in items:
                if not key or any(c.isspace() for c in key):
                    raise DataDirError(f"{ark}: invalid key {key!r} (empty or contains whitespace)")
                if key in seen:
                    raise DataDirError(f"{ark}: duplicate key '{key}'")
                seen.add(key)
                # the record's data starts after "<key> "; that offset is what the scp stores
                offset = fa.tell() + len(key.encode("utf-8")) + 1
                kaldiio.save_ark(fa, {key: np.asarray(array)})
                fs.write(f"{key} {ark_final}:{offset}\n")
    return len(seen)


def read_scp(scp: str | os.PathLike) -> Mapping[str, np.ndarray]:
    """A lazy ``{key: array}`` over an scp (kaldiio.load_scp); arrays load when indexed."""
    scp = os.fspath(scp)
    if not os.path.isfile(scp):
        raise DataDirError(f"scp file not found: {scp}")
    return kaldiio.load_scp(scp)


def iter_ark(ark: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Stream ``(key, array)`` records of an ark in file order."""
    yield from kaldiio.load_ark(os.fspath(ark))
