"""reward_vs_judge's pieces: the candidate data dir and the TSV reader (the whole run is in the e2e test)."""
import pytest

from ttsrl.bin import reward_vs_judge
from ttsrl.data.datadir import DataDir
from ttsrl.data.toy import make_toy_data_dir


def test_candidate_data_dir_copies_text_speaker_and_prompt(tmp_path):
    src = make_toy_data_dir(tmp_path / "dev", num_spk=2, utts_per_spk=2)
    d = DataDir.load(src)
    d.extra["prompt_text"] = {u: f"prompt of {u}" for u in d.utts}
    d.write(src)
    keys = ["spk1-utt1-c0", "spk1-utt1-c1", "spk2-utt2-c3"]
    reward_vs_judge.candidate_data_dir(src, keys, str(tmp_path / "cand"))
    c = DataDir.load(tmp_path / "cand")
    assert c.utts == keys
    assert c.text["spk1-utt1-c1"] == d.text["spk1-utt1"] and c.utt2spk["spk2-utt2-c3"] == "spk2"
    assert c.extra["prompt_text"]["spk2-utt2-c3"] == "prompt of spk2-utt2"


def test_read_tsv_skips_empty_cells_and_names_a_missing_column(tmp_path):
    p = tmp_path / "per_utt.tsv"
    p.write_text('utt\tstatus\thyp\tcer\na\tok\tsay "hi\t12.5\nb\tmissing\t\t\n')
    assert reward_vs_judge.read_tsv(str(p), "cer") == {"a": 12.5}
    with pytest.raises(SystemExit, match="no column 'wer'"):
        reward_vs_judge.read_tsv(str(p), "wer")


def test_pair_agreement_counts_the_judges_view_of_best_vs_worst():
    rewards = {"a-c0": 1.0, "a-c1": 0.0, "a-c2": 0.5,  # best a-c0, worst a-c1: the judge agrees
               "b-c0": 2.0, "b-c1": 1.0,  # the judge disagrees
               "c-c0": 1.0, "c-c1": 0.0,  # CER tie: half
               "d-c0": 1.0, "d-c1": 1.0,  # reward tie: no pair, still a best-of-N choice (c0)
               "e-c0": 3.0}  # one candidate: skipped
    cer = {"a-c0": 10.0, "a-c1": 40.0, "a-c2": 20.0, "b-c0": 50.0, "b-c1": 30.0, "c-c0": 5.0, "c-c1": 5.0,
           "d-c0": 20.0, "d-c1": 10.0, "e-c0": 0.0}
    out = reward_vs_judge.pair_agreement(rewards, cer)
    assert out["pair_agreement_pairs"] == 3 and out["pair_agreement_vs_judge"] == pytest.approx(1.5 / 3)
    means = {"a": 70 / 3, "b": 40.0, "c": 5.0, "d": 15.0}
    chosen = {"a": 10.0, "b": 50.0, "c": 5.0, "d": 20.0}  # CER of the reward's best
    lowest = {"a": 10.0, "b": 30.0, "c": 5.0, "d": 10.0}
    assert out["best_of_n_gain"] == pytest.approx(sum(means[u] - chosen[u] for u in means) / 4, abs=1e-4)
    assert out["best_of_n_gain_oracle"] == pytest.approx(sum(means[u] - lowest[u] for u in means) / 4, abs=1e-4)
    assert reward_vs_judge.pair_agreement({"a-c0": 1.0}, {"a-c0": 1.0})["pair_agreement_vs_judge"] is None
