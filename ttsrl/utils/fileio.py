"""Atomic file writes: a reader never sees a half-written file, a failed write leaves no trace.

Usage::

    with atomic_path("exp/x/stats.npz", suffix=".npz") as tmp:
        np.savez(tmp, mean=mean)              # written to a temporary name beside the target
    atomic_write_text("exp/x/metrics.json", text)
    atomic_copy("dump/tokens/train/tokens.txt", "exp/base/lm/tokens.txt")
    remove_stale_temps("dump/feats/train", ["feats.ark", "feats.scp"])  # what a killed writer left
    write_json("dump/tokens/test/metrics.json", {"ctc_cer": 3.2})       # replaces the file
    write_metrics("exp/tokenizer/metrics.json", {"ctc_cer_test": 3.2})  # merges into the file
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", fsync: bool = False) -> Iterator[str]:
    """Yields a temporary path in the target's folder; it replaces `path` when the block succeeds.

    The folder is created. On an exception the temporary file is removed and `path` is left as
    it was. `fsync` flushes the file and its folder to disk (checkpoints).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temps(directory: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Remove the temporary files :func:`atomic_path` left in ``directory`` for the targets ``names``.

    A process killed without a chance to clean up (SIGKILL, the OOM killer, a node lost) leaves
    its hidden ``.<name>.<random><suffix>`` files behind; a writer calls this before writing
    ``names`` again, so that reruns do not pile them up. Only one process may write to
    ``directory`` at a time (as every stage does). Returns the removed paths.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    prefixes = tuple(f".{n}." for n in names)
    removed = []
    for entry in os.listdir(directory):
        if entry.startswith(prefixes):
            path = os.path.join(directory, entry)
            if os.path.isfile(path):
                os.unlink(path)
                removed.append(path)
    return sorted(removed)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` (UTF-8, "\\n" line ends) to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copies the file `src` to `dst` atomically (a copy onto itself leaves it as it is)."""
    if os.path.abspath(src) == os.path.abspath(dst):
        return
    with atomic_path(dst, suffix=os.path.splitext(os.fspath(dst))[1] or ".tmp") as tmp:
        shutil.copyfile(src, tmp)


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Writes ``data`` as indented JSON with sorted keys to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_metrics(path: str | os.PathLike, metrics: dict) -> None:
    """Merges ``metrics`` into the JSON file at ``path`` (created when missing; atomic)."""
    old = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    old.update(metrics)
    write_json(path, old)
