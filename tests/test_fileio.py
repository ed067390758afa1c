"""ttsrl.utils.fileio: atomic writes leave either the old file or the new one, never a partial one."""
import os

import pytest

from ttsrl.utils.fileio import atomic_copy, atomic_path, atomic_write_text


def test_atomic_write_text_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "x.txt"
    atomic_write_text(target, "one\n")
    atomic_write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert os.listdir(target.parent) == ["x.txt"]


def test_atomic_copy(tmp_path):
    (tmp_path / "a.txt").write_text("data\n")
    atomic_copy(tmp_path / "a.txt", tmp_path / "sub" / "b.txt")
    atomic_copy(tmp_path / "a.txt", tmp_path / "a.txt")  # onto itself: left as it is
    assert (tmp_path / "sub" / "b.txt").read_text() == (tmp_path / "a.txt").read_text() == "data\n"
    assert os.listdir(tmp_path / "sub") == ["b.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_fsync_variant(tmp_path):
    with atomic_path(tmp_path / "y.bin", fsync=True) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"\0\1")
    assert (tmp_path / "y.bin").read_bytes() == b"\0\1"
