"""The data-dir entrypoints: --help exits 0, main([...]) runs on a toy dir, bad input
gives a one-line error on stderr and exit code 1 (no traceback)."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from ttsrl.data.toy import make_toy_data_dir

MODULES = ["validate_data_dir", "fix_data_dir", "split_data", "subset_data_dir", "combine_data", "seedtts_to_data_dir"]


def entry(name: str):
    return importlib.import_module(f"ttsrl.bin.{name}").main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return Path(make_toy_data_dir(tmp_path / "data"))


@pytest.mark.parametrize("name", MODULES)
def test_help_exits_0(name: str, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as e:
        entry(name)(["--help"])
    assert e.value.code == 0
    assert "Usage:" in capsys.readouterr().out


def test_validate(data: Path, capsys: pytest.CaptureFixture):
    assert entry("validate_data_dir")([str(data)]) == 0
    assert entry("validate_data_dir")(["--sample_rate", "22050", str(data)]) == 1
    err = capsys.readouterr().err
    assert "wav.scp:1: utterance 'spk1-utt1': sample rate 16000 Hz, expected 22050 Hz" in err
    assert "validate_data_dir: error: " in err and "6 problem(s)" in err
    assert entry("validate_data_dir")(["--no-audio", "--sample-rate", "22050", str(data)]) == 0
    (data / "wav.scp").unlink()
    assert entry("validate_data_dir")(["--no_audio", "--required", "text utt2spk", str(data)]) == 0


def test_validate_kaldi_strict(data: Path, capsys: pytest.CaptureFixture):
    (data / "spk2utt").unlink()  # Kaldi's validate_data_dir.sh requires it
    assert entry("validate_data_dir")(["--no_audio", str(data)]) == 1
    assert "spk2utt: missing (Kaldi requires it beside utt2spk" in capsys.readouterr().err
    assert entry("validate_data_dir")(["--no_audio", "--kaldi_strict", "false", str(data)]) == 0
    with pytest.raises(SystemExit):
        entry("validate_data_dir")(["--kaldi-strict", "maybe", str(data)])


def test_fix(data: Path):
    (data / "text").write_text((data / "text").read_text() + "zz-extra hello\n")
    assert entry("fix_data_dir")([str(data)]) == 0
    assert "zz-extra missing from utt2spk" in (data / ".backup" / "dropped.txt").read_text()
    assert entry("fix_data_dir")([str(data / "nope")]) == 1


def test_split(data: Path, capsys: pytest.CaptureFixture):
    assert entry("split_data")([str(data), "3", "--per_spk"]) == 0
    assert capsys.readouterr().out.split() == [str(data / "split3" / str(k)) for k in (1, 2, 3)]
    assert entry("split_data")([str(data), "2", "--per-utt"]) == 0
    assert entry("split_data")([str(data), "10"]) == 1
    assert "split_data: error: " in capsys.readouterr().err


def test_subset_and_combine(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert entry("subset_data_dir")(["--first", "2", str(data), str(tmp_path / "a")]) == 0
    assert entry("subset_data_dir")(["--shortest", "3", str(data), str(tmp_path / "b")]) == 0
    (tmp_path / "spks").write_text("spk3\n")
    assert entry("subset_data_dir")(["--spk-list", str(tmp_path / "spks"), str(data), str(tmp_path / "c")]) == 0
    assert entry("combine_data")([str(tmp_path / "ac"), str(tmp_path / "a"), str(tmp_path / "c")]) == 0
    assert (tmp_path / "ac" / "utt2spk").read_text().count("\n") == 4
    assert entry("combine_data")([str(tmp_path / "ab"), str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "combine_data: error: " in capsys.readouterr().err
    assert entry("subset_data_dir")(["--last", "99", str(data), str(tmp_path / "d")]) == 1


def test_seedtts(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    lst = tmp_path / "meta.lst"
    lst.write_text("u1|Prompt.|data/wav/spk1-utt1.wav|Target text.\n")
    assert entry("seedtts_to_data_dir")([str(lst), str(tmp_path / "seed")]) == 0
    assert (tmp_path / "seed" / "prompt.scp").read_text() == f"u1 {data}/wav/spk1-utt1.wav\n"
    lst.write_text("u1|Prompt.|data/wav/none.wav|Target text.\n")
    assert entry("seedtts_to_data_dir")([str(lst), str(tmp_path / "seed2")]) == 1
    assert f"{lst}:1: prompt wav of 'u1' not found" in capsys.readouterr().err
    assert entry("seedtts_to_data_dir")(["--no_check_wavs", str(lst), str(tmp_path / "seed2")]) == 0


def test_module_run_fails_cleanly(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "ttsrl.bin.fix_data_dir", str(tmp_path / "nope")],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.strip() == f"fix_data_dir: error: {tmp_path / 'nope'}: not a directory"
