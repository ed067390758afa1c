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
