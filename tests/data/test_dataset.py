"""UttDataset (scp arrays, integer-sequence files, in-memory fields) and padding collate."""
import numpy as np
import pytest
import torch

from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError
from ttsrl.data.dataset import UttDataset, collate_pad, pad_arrays, read_int_seqs


@pytest.fixture
def fields(tmp_path):
    feats = {"u1": np.ones((5, 3), np.float32), "u2": 2 * np.ones((2, 3), np.float32), "u3": np.zeros((4, 3), np.float32)}
    write_ark_scp(tmp_path / "feats.ark", tmp_path / "feats.scp", feats.items())
    write_ark_scp(tmp_path / "tok.ark", tmp_path / "tok.scp",
                  ((u, np.arange(n, dtype=np.int32)) for u, n in (("u1", 3), ("u2", 1), ("u3", 2))))
    (tmp_path / "text").write_text("u1 4 5 6\nu2 7\nu3 8 9\n")
    (tmp_path / "utt2num_frames").write_text("u1 5\nu2 2\nu3 4\n")
    return tmp_path


def test_items_join_fields_by_utterance(fields):
    ds = UttDataset({"feats": fields / "feats.scp", "text": fields / "text", "speech": fields / "tok.scp",
                     "spk": {"u1": [1], "u2": [2], "u3": [3]}})
    assert len(ds) == 3 and ds.utts == ["u1", "u2", "u3"]
    item = ds[1]
    assert item["utt"] == "u2" and item["feats"].shape == (2, 3) and item["text"].tolist() == [7]
    assert item["speech"].dtype == np.int32 and item["spk"].tolist() == [2]
    assert ds.lengths("feats").tolist() == [5, 2, 4]
    assert ds.lengths("feats", fields / "utt2num_frames").tolist() == [5, 2, 4]
    assert ds.lengths("text").tolist() == [3, 1, 2]


def test_utts_subset_and_missing_utterance_named(fields):
    ds = UttDataset({"text": fields / "text"}, utts=["u3", "u1"])
    assert [ds[i]["utt"] for i in range(2)] == ["u3", "u1"]
    with pytest.raises(DataDirError, match="'u4'"):
        UttDataset({"text": fields / "text", "x": {"u1": [1]}}, utts=["u1", "u4"])
    with pytest.raises(DataDirError, match="no entry for utterance 'u2'"):
        UttDataset({"feats": fields / "feats.scp", "x": {"u1": [1], "u3": [1]}})


def test_read_int_seqs_rejects_non_integers(tmp_path):
    (tmp_path / "bad").write_text("u1 1 2\nu2 3 x\n")
    with pytest.raises(DataDirError, match="u2"):
        read_int_seqs(tmp_path / "bad")


def test_collate_pads_and_reports_lengths(fields):
    ds = UttDataset({"feats": fields / "feats.scp", "text": fields / "text"})
    batch = collate_pad([ds[0], ds[1]], pad_values={"text": -1})
    assert batch["utts"] == ["u1", "u2"]
    assert batch["feats"].shape == (2, 5, 3) and batch["feats"].dtype == torch.float32
    assert batch["feats_lens"].tolist() == [5, 2]
    assert (batch["feats"][1, 2:] == 0).all() and (batch["feats"][1, :2] == 2).all()
    assert batch["text"].tolist() == [[4, 5, 6], [7, -1, -1]] and batch["text"].dtype == torch.int64
    assert batch["text_lens"].tolist() == [3, 1]


def test_pad_arrays_accepts_tensors():
    out, lens = pad_arrays([torch.ones(2, 2), torch.ones(3, 2)], pad_value=-5)
    assert out.shape == (2, 3, 2) and lens.tolist() == [2, 3] and out[0, 2, 0] == -5


def test_works_with_bucket_loader(fields):
    from ttsrl.train.sampler import build_loader

    ds = UttDataset({"feats": fields / "feats.scp", "text": fields / "text"})
    loader = build_loader(ds, ds.lengths("feats"), max_tokens=8, collate_fn=collate_pad, shuffle=False)
    seen = [u for b in loader for u in b["utts"]]
    assert sorted(seen) == ["u1", "u2", "u3"]
