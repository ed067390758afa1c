"""TokenDataset and collate: ids, prompts, padding, clear errors."""
import numpy as np
import pytest
import torch

from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError, write_kv
from ttsrl.data.token_dataset import (
    CTC_TEXT,
    TokenDataset,
    collate_tokens,
    ctc_text_path,
    ctc_token_list,
    pad_1d,
)


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


def test_ctc_text_is_read_for_the_reward_side(tmp_path):
    d = make(tmp_path, {"a": "30 31", "b": "32"}, {"a": [1, 2], "b": [3]})
    # a token dir written before ctc_text existed: its text is in the CTC units
    assert ctc_text_path(d) == str(tmp_path / "text") and ctc_token_list(d) == str(tmp_path / "tokens.txt")
    assert TokenDataset(d, text_file=CTC_TEXT).text == {"a": [30, 31], "b": [32]}
    write_kv(tmp_path / "ctc_text", {"a": "3 4 5", "b": "6"})
    assert ctc_text_path(d) == str(tmp_path / "ctc_text")
    ctc = TokenDataset(d, text_file=CTC_TEXT)
    assert ctc.text == {"a": [3, 4, 5], "b": [6]} and ctc[0]["text"].tolist() == [3, 4, 5]
    assert TokenDataset(d).text == {"a": [30, 31], "b": [32]}  # the LM still reads text
    with pytest.raises(ValueError, match="give the tokenizer dir"):  # ctc_text != text: not the dir's tokens.txt
        ctc_token_list(d)
    assert ctc_token_list(d, "exp/tokenizer") == "exp/tokenizer/tokens.txt"
    write_kv(tmp_path / "ctc_text", {"a": "30 31", "b": "32"})  # the LM's units are the CTC units
    assert ctc_token_list(d) == str(tmp_path / "tokens.txt")


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


def test_prompted_items_pair_utterances_of_a_speaker(tmp_path):
    from ttsrl.data.token_dataset import PromptedTokenDataset

    text = {"s1-a": "3 4", "s1-b": "5", "s2-c": "6 7 8", "s3-d": "2"}
    speech = {"s1-a": [1, 2], "s1-b": [3, 4, 5], "s2-c": [6], "s3-d": [9, 9]}
    base = TokenDataset(make(tmp_path, text, speech))
    spk = {u: u.split("-")[0] for u in text}
    ds = PromptedTokenDataset(base, spk, prompt_prob=1.0)
    assert ds.partner == {"s1-a": "s1-b", "s1-b": "s1-a"}  # s2 and s3 have no second utterance
    a = ds[0]
    assert a["text"].tolist() == [5, 3, 4] and a["speech"].tolist() == [3, 4, 5, 1, 2] and len(a["prompt"]) == 3
    assert len(ds[2]["prompt"]) == 0 and ds[2]["text"].tolist() == [6, 7, 8]
    assert ds.lengths.tolist() == [len(ds[i]["text"]) + len(ds[i]["speech"]) + 2 for i in range(4)]
    batch = collate_tokens([ds[0], ds[2]])
    assert batch["prompt_lens"].tolist() == [3, 0] and batch["speech_lens"].tolist() == [5, 1]
    assert PromptedTokenDataset(base, spk, prompt_prob=0.0).partner == {}
    assert PromptedTokenDataset(base, spk, prompt_prob=1.0, max_len=8).partner == {}  # 5 + 6 positions > 8
    with pytest.raises(DataDirError, match="no speaker"):
        PromptedTokenDataset(base, {"s1-a": "s1"})
    # a set with its own prompts (dev/test) is read with them
    write_kv(tmp_path / "prompt_text", {u: "2" for u in text})
    write_ark_scp(tmp_path / "prompt_speech.ark", tmp_path / "prompt_speech.scp",
                  [(u, np.array([8, 8], dtype=np.int32)) for u in sorted(text)])
    own = PromptedTokenDataset(TokenDataset(str(tmp_path), with_prompt=True))
    assert own[3]["speech"].tolist() == [8, 8, 9, 9] and len(own[3]["prompt"]) == 2


def test_lm_input_lays_out_prompt_and_utterance():
    """The one layout of the codec LM's input: [prompt text + text | prompt speech + speech]."""
    from ttsrl.data.token_dataset import lm_input, lm_speech

    t, pt, ps, s = torch.tensor([5, 6]), torch.tensor([2, 3, 4]), torch.tensor([7, 8]), torch.tensor([1, 9, 9])
    row = lm_input(t, pt, ps, s)
    assert row["text"].tolist() == [2, 3, 4, 5, 6] and row["speech"].tolist() == [7, 8, 1, 9, 9]
    assert row["prompt"].tolist() == [7, 8] and row["target_text_lens"] == 2
    alone = lm_input(t)  # no prompt: the text alone, an empty prompt, no speech
    assert alone["text"].tolist() == [5, 6] and alone["prompt"].numel() == 0 and "speech" not in alone
    batch = collate_tokens([row, lm_input(t, speech=s)])
    assert batch["text_lens"].tolist() == [5, 2] and batch["prompt_lens"].tolist() == [2, 0]
    assert batch["speech_lens"].tolist() == [5, 3] and batch["target_text_lens"].tolist() == [2, 2]
    assert "utts" not in batch
    assert lm_speech(s, ps).tolist() == row["speech"].tolist() and lm_speech(s).tolist() == s.tolist()
    assert lm_input([5, 6], [], None, [1])["text"].dtype == torch.long  # lists (synthesis) work too
