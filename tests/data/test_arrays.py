"""Tests of ttsrl.data.arrays: ark/scp round trip, atomicity, key checks."""

from pathlib import Path

import numpy as np
import pytest

from ttsrl.data.arrays import iter_ark, read_scp, write_ark_scp
from ttsrl.data.datadir import DataDirError


def test_round_trip(tmp_path: Path):
    items = {
        "u1": np.arange(12, dtype=np.float32).reshape(3, 4),  # (T, D) features
        "u2": np.array([5, 1, 1023], dtype=np.int32),  # (T,) speech tokens
    }
    n = write_ark_scp(tmp_path / "a" / "x.ark", tmp_path / "x.scp", iter(items.items()))
    assert n == 2
    scp_lines = (tmp_path / "x.scp").read_text().splitlines()
    assert [line.split()[1].rsplit(":", 1)[0] for line in scp_lines] == [str(tmp_path / "a" / "x.ark")] * 2
    lazy = read_scp(tmp_path / "x.scp")
    for key, arr in items.items():
        np.testing.assert_array_equal(lazy[key], arr)
        assert lazy[key].dtype == arr.dtype
    assert [k for k, _ in iter_ark(tmp_path / "a" / "x.ark")] == ["u1", "u2"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.ark"]  # no temporaries left


def test_failure_leaves_nothing(tmp_path: Path):
    def items():
        yield "u1", np.zeros(3, dtype=np.float32)
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        write_ark_scp(tmp_path / "x.ark", tmp_path / "x.scp", items())
    assert list(tmp_path.iterdir()) == []


def test_bad_keys(tmp_path: Path):
    with pytest.raises(DataDirError, match="duplicate key 'u1'"):
        write_ark_scp(tmp_path / "x.ark", tmp_path / "x.scp", [("u1", np.zeros(1)), ("u1", np.zeros(1))])
    with pytest.raises(DataDirError, match="invalid key"):
        write_ark_scp(tmp_path / "x.ark", tmp_path / "x.scp", [("a b", np.zeros(1))])
    with pytest.raises(DataDirError, match="scp file not found"):
        read_scp(tmp_path / "nope.scp")
