"""TokenReward components and weights; pair building (margin, ties, identical tokens, golden, best-of-N, errors)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttsrl.align.pairs import best_of_n, best_worst_pairs, golden_pairs, make_pairs, read_rewards
from ttsrl.align.rewards import TokenReward, parse_candidate_key
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError
from ttsrl.models.reward import MultiTaskReward, MultiTaskRewardConfig

V, VT = 20, 9
NAMES = {"emotion": ["angry", "happy", "neutral", "sad"], "gender": ["f", "m"]}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = MultiTaskRewardConfig(speech_vocab_size=V, text_vocab_size=VT, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                                dropout=0.0, label_names=NAMES, quality_mean=3.0, quality_std=1.0)
    return MultiTaskReward(cfg).eval()


TOKENS = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [3, 3, 3, 3]]
TEXT = [[2, 3, 4], [5, 6], [7]]


# --------------------------------------------------------------------------- rewards
def test_components_and_weighted_reward(model):
    scorer = TokenReward(model, {"text": 1.0, "emotion": 0.5, "quality": 0.1})
    out = scorer.score(TOKENS, text=TEXT, targets={"emotion": ["happy", "sad", "happy"], "gender": "m"})
    assert set(out) == {"text", "emotion", "gender", "quality", "reward"}
    ids, lens = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0], [3, 3, 3, 3, 0, 0]]), torch.tensor([6, 3, 4])
    text, text_lens = torch.tensor([[2, 3, 4], [5, 6, 0], [7, 0, 0]]), torch.tensor([3, 2, 1])
    with torch.no_grad():
        lp = model.text_logprob(ids, lens, text, text_lens)
        res = model(ids, lens)
    torch.testing.assert_close(out["text"], lp / text_lens)  # per text token
    emo = res.emo_logits.log_softmax(-1)[torch.arange(3), torch.tensor([1, 3, 1])]
    torch.testing.assert_close(out["emotion"], emo)
    torch.testing.assert_close(out["gender"], res.gender_logits.log_softmax(-1)[:, 1])
    torch.testing.assert_close(out["reward"], out["text"] + 0.5 * out["emotion"] + 0.1 * out["quality"])
    assert not out["reward"].requires_grad


def test_soft_input_is_differentiable(model):
    scorer = TokenReward(model, {"text": 1.0, "emotion": 1.0})
    ids = torch.tensor([[1, 2, 3, 4]])
    soft = F.one_hot(ids, V).float().requires_grad_(True)
    out = scorer.score(soft, torch.tensor([4]), text=[[2, 3]], targets={"emotion": ["neutral"]})
    out["reward"].sum().backward()
    assert soft.grad.abs().sum() > 0


def test_bad_weights_and_targets(model):
    with pytest.raises(ValueError, match="unknown reward components"):
        TokenReward(model, {"pitch": 1.0})
    with pytest.raises(ValueError, match="no age head"):
        TokenReward(model, {"age": 1.0})
    scorer = TokenReward(model, {"text": 1.0, "emotion": 1.0})
    with pytest.raises(ValueError, match=r"\['emotion'\] have a weight but no targets"):
        scorer.score(TOKENS, text=TEXT)
    with pytest.raises(ValueError, match="unknown emotion label 'joy'"):
        scorer.score(TOKENS, text=TEXT, targets={"emotion": "joy"})
    with pytest.raises(ValueError, match="no text was given"):
        scorer.score(TOKENS, targets={"emotion": "sad"})


def test_candidate_keys():
    assert parse_candidate_key("spk1-u-c12") == ("spk1-u", 12)
    with pytest.raises(ValueError, match="not <utt>-c<k>"):
        parse_candidate_key("spk1-u")


# --------------------------------------------------------------------------- pairs
def toks(**kv):
    return {k: np.array(v, dtype=np.int32) for k, v in kv.items()}


CANDS = {"a-c0": [1, 2], "a-c1": [3, 4], "a-c2": [5, 6],  # a: clear best (c1) and worst (c2)
         "b-c0": [1, 1], "b-c1": [2, 2],  # b: gap 0.05 < margin
         "c-c0": [7, 7], "c-c1": [8, 8],  # c: equal rewards
         "d-c0": [9, 9], "d-c1": [9, 9],  # d: identical tokens
         "e-c0": [4, 4]}  # e: one candidate
REWARD = {"a-c0": 0.0, "a-c1": 1.0, "a-c2": -1.0, "b-c0": 0.5, "b-c1": 0.55, "c-c0": 0.3, "c-c1": 0.3,
          "d-c0": 0.2, "d-c1": 0.2, "e-c0": 0.9}


def test_best_worst_drops_and_counts():
    pairs, counts = best_worst_pairs(REWARD, {k: np.array(v) for k, v in CANDS.items()}, margin=0.1)
    assert [p["utt"] for p in pairs] == ["a"]
    p = pairs[0]
    assert (p["chosen_key"], p["rejected_key"], p["chosen"], p["rejected"]) == ("a-c1", "a-c2", [3, 4], [5, 6])
    assert (p["chosen_reward"], p["rejected_reward"], p["mode"]) == (1.0, -1.0, "best_worst")
    assert counts == {"utts": 5, "pairs": 1, "dropped_margin": 1, "dropped_tie": 1, "dropped_identical": 1,
                      "dropped_single": 1}
    pairs, counts = best_worst_pairs(REWARD, {k: np.array(v) for k, v in CANDS.items()}, margin=0.0)
    assert [p["utt"] for p in pairs] == ["a", "b"] and counts["dropped_margin"] == 0 and counts["dropped_tie"] == 1


def test_golden_and_best_of_n():
    tokens = {k: np.array(v) for k, v in CANDS.items()}
    golden = {u: np.array([5, 5]) for u in "abce"} | {"d": np.array([9, 9])}
    pairs, counts = golden_pairs(golden, tokens, REWARD)
    by = {p["utt"]: p for p in pairs}
    assert by["a"]["rejected_key"] == "a-c2" and by["a"]["chosen"] == [5, 5] and by["a"]["chosen_reward"] is None
    assert by["c"]["rejected_key"] == "c-c1"  # a tie for the worst goes to the highest k
    assert "d" not in by and counts["dropped_identical"] == 1  # golden == the sample
    pairs, _ = golden_pairs(golden, tokens)  # without rewards: c0
    assert {p["rejected_key"] for p in pairs} == {"a-c0", "b-c0", "c-c0", "e-c0"}
    assert all(p["rejected_reward"] is None for p in pairs)
    with pytest.raises(DataDirError, match="speech.scp: no golden tokens for utterance e"):
        golden_pairs({u: golden[u] for u in "abcd"}, tokens, golden_source="speech.scp")
    best, counts = best_of_n(REWARD, tokens)
    assert {p["utt"]: p["chosen_key"] for p in best} == {"a": "a-c1", "b": "b-c1", "c": "c-c0", "d": "d-c0",
                                                         "e": "e-c0"}
    assert all(p["rejected"] is None and p["mode"] == "best" for p in best) and counts["pairs"] == 5


def write_samples(path, cands, rewards=None, header="key\ttext\treward"):
    path.mkdir(parents=True, exist_ok=True)
    write_ark_scp(path / "tokens.ark", path / "tokens.scp", sorted(toks(**cands).items()))
    if rewards is not None:
        lines = [header] + [f"{k}\t{v - 0.5}\t{v}" for k, v in rewards.items()]
        (path / "rewards.tsv").write_text("\n".join(lines) + "\n")
    return path


def test_make_pairs_writes_outputs(tmp_path):
    samples = write_samples(tmp_path / "samples", CANDS, REWARD)
    summary = make_pairs(str(samples), str(tmp_path / "out"), margin=0.1)
    lines = (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["chosen"] == [3, 4]
    saved = json.loads((tmp_path / "out" / "pairs_summary.json").read_text())
    assert saved == summary and saved["pairs"] == 1 and saved["dropped_tie"] == 1
    assert saved["chosen_reward_mean"] == 1.0 and saved["rejected_reward_mean"] == -1.0
    assert saved["candidates_scored"] == len(REWARD)
    assert (tmp_path / "out" / "rewards_hist.png").stat().st_size > 1000
    # ranking by another column
    make_pairs(str(samples), str(tmp_path / "out2"), reward_column="text")
    assert json.loads((tmp_path / "out2" / "pairs.jsonl").read_text().splitlines()[0])["chosen_reward"] == 0.5
    with pytest.raises(ValueError, match="no column 'emotion'"):
        make_pairs(str(samples), str(tmp_path / "out3"), reward_column="emotion")


def test_make_pairs_golden_without_rewards(tmp_path):
    samples = write_samples(tmp_path / "samples", {"a-c0": [1], "a-c1": [2], "b-c0": [3]})
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    write_ark_scp(token_dir / "speech.ark", token_dir / "speech.scp", sorted(toks(a=[9, 9], b=[3]).items()))
    summary = make_pairs(str(samples), str(tmp_path / "out"), mode="golden", token_dir=str(token_dir))
    pairs = [json.loads(x) for x in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    assert [(p["utt"], p["chosen"], p["rejected_key"]) for p in pairs] == [("a", [9, 9], "a-c0")]
    assert summary["dropped_identical"] == 1 and summary["chosen_reward_mean"] is None
    assert not (tmp_path / "out" / "rewards_hist.png").exists()
    with pytest.raises(ValueError, match="needs the token dir"):
        make_pairs(str(samples), str(tmp_path / "out"), mode="golden")


def test_bad_rewards_files_name_file_and_line(tmp_path):
    samples = write_samples(tmp_path / "s", {"a-c0": [1], "a-c1": [2]}, {"a-c0": 1.0, "a-c1": 2.0, "x-c0": 0.0})
    with pytest.raises(DataDirError, match=r"rewards.tsv:4: candidate x-c0 has no tokens"):
        make_pairs(str(samples), str(tmp_path / "out"))
    rewards = samples / "rewards.tsv"
    rewards.write_text("key\treward\na-c0\t1.0\na-c0\t2.0\n")
    with pytest.raises(DataDirError, match=r"rewards.tsv:3: duplicate key a-c0"):
        read_rewards(str(rewards))
    rewards.write_text("key\treward\na-c0\tnan-ish\n")
    with pytest.raises(DataDirError, match=r"rewards.tsv:2: a-c0: not a number"):
        read_rewards(str(rewards))
    rewards.write_text("a-c0\t1.0\n")
    with pytest.raises(DataDirError, match=r"rewards.tsv:1: expected a header"):
        read_rewards(str(rewards))
    rewards.write_text("key\treward\nutt1\t1.0\n")
    with pytest.raises(DataDirError, match=r"rewards.tsv:2: candidate key 'utt1'"):
        read_rewards(str(rewards))
    with pytest.raises(DataDirError, match="rewards file not found"):
        make_pairs(str(samples), str(tmp_path / "out"), rewards=str(tmp_path / "none.tsv"))


def test_score_samples_dir_targets(model, tmp_path):
    from ttsrl.align.rewards import score_samples_dir
    from ttsrl.data.datadir import write_kv

    samples = write_samples(tmp_path / "s", {"a-c0": [1, 2, 3], "a-c1": [4, 5, 6], "b-c0": [7, 8, 9]})
    token_dir = tmp_path / "tok"
    token_dir.mkdir()
    write_kv(token_dir / "text", {"a": "2 3", "b": "4"})
    partial = {"emotion": {"a": "happy"}}  # no target for b
    summary = score_samples_dir(TokenReward(model), str(samples), str(token_dir), targets=partial)
    lines = (samples / "rewards.tsv").read_text().splitlines()
    assert lines[0] == "key\ttext\tquality\treward" and summary["candidates"] == 3  # emotion (weight 0) left out
    assert [x.split("\t")[0] for x in lines[1:]] == ["a-c0", "a-c1", "b-c0"]
    with pytest.raises(DataDirError, match="utterance b has no emotion target"):
        score_samples_dir(TokenReward(model, {"emotion": 1.0}), str(samples), str(token_dir), targets=partial)
    summary = score_samples_dir(TokenReward(model, {"emotion": 1.0}), str(samples), str(token_dir),
                                str(tmp_path / "r.tsv"), targets={"emotion": "sad"})
    assert (tmp_path / "r.tsv").read_text().splitlines()[0] == "key\ttext\temotion\tquality\treward"


def test_score_samples_dir_reads_the_ctc_text(model, tmp_path):
    """With LM text units other than the CTC ones (phonemes, BPE), the reward scores ctc_text."""
    from ttsrl.align.rewards import score_samples_dir
    from ttsrl.data.datadir import write_kv

    samples = write_samples(tmp_path / "s", {"a-c0": [1, 2, 3], "b-c0": [7, 8, 9]})
    token_dir = tmp_path / "tok"
    token_dir.mkdir()
    write_kv(token_dir / "text", {"a": "40 41 42", "b": "43"})  # the LM's units: outside the reward's vocabulary
    write_kv(token_dir / "ctc_text", {"a": "2 3", "b": "4"})
    seen = {}

    class Recorder(TokenReward):
        def score(self, tokens, lens=None, text=None, text_lens=None, targets=None, utts=None):
            seen.update({u: list(t) for u, t in zip(utts, text, strict=True)})
            return super().score(tokens, lens, text, text_lens, targets, utts)

    score_samples_dir(Recorder(model), str(samples), str(token_dir))
    assert seen == {"a": [2, 3], "b": [4]}
