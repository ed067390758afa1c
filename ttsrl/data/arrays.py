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
import tempfile
from collections.abc import Iterable, Iterator, Mapping

import kaldiio
import numpy as np

from ttsrl.data.datadir import DataDirError


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
    for p in (ark, scp):
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    ark_fd, ark_tmp = tempfile.mkstemp(prefix=".ark.", suffix=".tmp", dir=os.path.dirname(ark_final))
    scp_fd, scp_tmp = tempfile.mkstemp(prefix=".scp.", suffix=".tmp", dir=os.path.dirname(os.path.abspath(scp)))
    seen: set[str] = set()
    try:
        with os.fdopen(ark_fd, "wb") as fa, os.fdopen(scp_fd, "w", encoding="utf-8") as fs:
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
        for tmp in (ark_tmp, scp_tmp):
            os.chmod(tmp, 0o644)
        os.replace(ark_tmp, ark_final)
        os.replace(scp_tmp, scp)
    except BaseException:
        for tmp in (ark_tmp, scp_tmp):
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
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
