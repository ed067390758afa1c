"""ttsrl.bin.make_prompted_subset: an evenly spread, prompted subset of a training set."""
import pytest

from ttsrl.bin import make_prompted_subset
from ttsrl.data.datadir import DataDir
from ttsrl.data.toy import make_toy_data_dir


def test_subset_has_prompts_of_the_same_speaker_from_other_utterances(tmp_path):
    src = make_toy_data_dir(tmp_path / "train", num_spk=3, utts_per_spk=4)
    assert make_prompted_subset.main(["--num_utts", "6", src, str(tmp_path / "sub")]) == 0
    full, sub = DataDir.load(src), DataDir.load(tmp_path / "sub")
    assert len(sub.utts) == 6 and {sub.utt2spk[u] for u in sub.utts} == {"spk1", "spk2", "spk3"}
    wav2utt = {w: u for u, w in full.wav_scp.items()}
    for u in sub.utts:
        p = wav2utt[sub.extra["prompt.scp"][u]]
        assert p != u and full.utt2spk[p] == full.utt2spk[u]
        assert sub.extra["prompt_text"][u] == full.text[p]
    # deterministic
    make_prompted_subset.main(["--num_utts", "6", src, str(tmp_path / "sub2")])
    assert DataDir.load(tmp_path / "sub2").extra == sub.extra


def test_more_than_available_takes_all_and_bad_count_fails(tmp_path, capsys):
    src = make_toy_data_dir(tmp_path / "train", num_spk=2, utts_per_spk=2)
    make_prompted_subset.main(["--num_utts", "100", src, str(tmp_path / "sub")])
    assert len(DataDir.load(tmp_path / "sub").utts) == 4
    assert make_prompted_subset.main(["--num_utts", "0", src, str(tmp_path / "bad")]) == 1
    assert "--num_utts" in capsys.readouterr().err


def test_help_exits_zero():
    with pytest.raises(SystemExit) as e:
        make_prompted_subset.get_parser().parse_args(["--help"])
    assert e.value.code == 0


def test_speakers_with_one_utterance_are_left_out(tmp_path):
    src = make_toy_data_dir(tmp_path / "train", num_spk=2, utts_per_spk=2)
    d = DataDir.load(src)
    d.subset([u for u in d.utts if u != "spk2-utt2"]).write(tmp_path / "lone")
    assert make_prompted_subset.main(["--num_utts", "10", str(tmp_path / "lone"), str(tmp_path / "sub")]) == 0
    assert DataDir.load(tmp_path / "sub").utts == ["spk1-utt1", "spk1-utt2"]
