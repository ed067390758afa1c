"""TokenDataset and collate: ids, prompts, padding, clear errors."""
import numpy as np
import pytest
import torch

from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError, write_kv
from ttsrl.data.token_dataset import TokenDataset, collate_tokens, pad_1d


def make(tmp_path, text, speech):
    write_kv(tmp_path / "text", text)
    write_ark_scp(tmp_path / "speech.ark", tmp_path / "speech.scp",
                  [(u, np.array(v, dtype=np.int32)) for u, v in sorted(speech.items())])
    return str(tmp_path)


def test_items_lengths_and_collate(tmp_path):
    d = make(tmp_path, {"a": "3 4 5", "b": "6"}, {"a": [1, 2], "b": [7, 8, 9, 10]})
    ds = TokenDataset(d)
    assert ds.utts == ["a", "b"] and ds.lengths.tolist() == [7, 7]
    batch = collate_tokens([ds[0], ds[1]])
    assert batch["utts"] == ["a", "b"]
    assert batch["text"].tolist() == [[3, 4, 5], [6, 0, 0]] and batch["text_lens"].tolist() == [3, 1]
    assert batch["speech"].tolist() == [[1, 2, 0, 0], [7, 8, 9, 10]] and batch["speech_lens"].tolist() == [2, 4]


def test_bad_ids_name_the_utterance(tmp_path):
    d = make(tmp_path, {"a": "3 x 5"}, {"a": [1]})
    with pytest.raises(DataDirError, match="utterance a"):
        TokenDataset(d)


def test_text_without_speech_is_an_error(tmp_path):
    d = make(tmp_path, {"a": "3", "b": "4"}, {"a": [1]})
    with pytest.raises(DataDirError, match="no speech tokens"):
        TokenDataset(d)


def test_pad_1d():
    x, n = pad_1d([torch.tensor([1, 2, 3]), torch.tensor([4])], value=-1)
    assert x.tolist() == [[1, 2, 3], [4, -1, -1]] and n.tolist() == [3, 1]
