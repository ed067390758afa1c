"""Tests of ttsrl.data.seedtts: the list reader and the conversion to a data directory."""

from pathlib import Path

import pytest
from data_helpers import read_lines, write_lines

from ttsrl.data.datadir import DataDir, DataDirError
from ttsrl.data.seedtts import read_seedtts_list, seedtts_to_data_dir
from ttsrl.data.validate import validate_data_dir


@pytest.fixture
def seed_dir(data_dir: Path, tmp_path: Path) -> Path:
    """A Seed-TTS-Eval-like folder: en/meta.lst with relative prompt-wavs/ and wavs/."""
    root = tmp_path / "seedtts_testset" / "en"
    (root / "prompt-wavs").mkdir(parents=True)
    (root / "wavs").mkdir()
    for utt in ("spk1-utt1", "spk2-utt1"):
        (root / "prompt-wavs" / f"{utt}.wav").write_bytes((data_dir / "wav" / f"{utt}.wav").read_bytes())
        (root / "wavs" / f"{utt}.wav").write_bytes((data_dir / "wav" / "spk3-utt1.wav").read_bytes())
    return root


def test_read_relative_paths(seed_dir: Path):
    write_lines(seed_dir / "meta.lst", [
        "b-case|We asked twenty people.|prompt-wavs/spk2-utt1.wav|Get the trust fund to the bank early.",
        "",
        "a-case|Prompt words.|prompt-wavs/spk1-utt1.wav|Hello there.|wavs/spk1-utt1.wav",
    ])  # fmt: skip
    items = read_seedtts_list(seed_dir / "meta.lst", check_wavs=True)
    assert [(it.utt, it.lineno) for it in items] == [("b-case", 1), ("a-case", 3)]
    assert items[0].prompt_wav == str(seed_dir / "prompt-wavs" / "spk2-utt1.wav")
    assert items[0].gt_wav is None and items[1].gt_wav == str(seed_dir / "wavs" / "spk1-utt1.wav")
    assert items[0].infer_text == "Get the trust fund to the bank early."


@pytest.mark.parametrize(
    "line, message",
    [
        ("x|text|prompt-wavs/spk1-utt1.wav", "expected 4 or 5 '|'-separated fields"),
        ("x|a|b|c|d|e", "got 6"),
        ("x y|a|prompt-wavs/spk1-utt1.wav|c", "invalid utt id"),
        ("x|a|prompt-wavs/spk1-utt1.wav|", "empty infer_text for 'x'"),
        ("x|a|prompt-wavs/missing.wav|hello", "prompt wav of 'x' not found"),
        ("x|a|prompt-wavs/spk1-utt1.wav|hello|wavs/missing.wav", "gt wav of 'x' not found"),
        ("ok|a|prompt-wavs/spk1-utt1.wav|hello", "duplicate utt 'ok' (first on line 1)"),
    ],
)
def test_bad_line_names_file_and_line(seed_dir: Path, line: str, message: str):
    lst = write_lines(seed_dir / "meta.lst", ["ok|a|prompt-wavs/spk1-utt1.wav|hello", line])
    with pytest.raises(DataDirError) as e:
        read_seedtts_list(lst, check_wavs=True)
    assert str(e.value).startswith(f"{lst}:2: ") and message in str(e.value)


def test_missing_wav_not_checked_by_default(seed_dir: Path):
    lst = write_lines(seed_dir / "meta.lst", ["x|a|prompt-wavs/missing.wav|hello"])
    assert read_seedtts_list(lst)[0].prompt_wav.endswith("missing.wav")


def test_non_utf8_and_empty_list(seed_dir: Path):
    (seed_dir / "meta.lst").write_bytes(b"x|caf\xe9|p.wav|t\n")
    with pytest.raises(DataDirError, match=r"meta.lst:1: not valid UTF-8"):
        read_seedtts_list(seed_dir / "meta.lst")
    write_lines(seed_dir / "meta.lst", [""])
    with pytest.raises(DataDirError, match="no test cases"):
        read_seedtts_list(seed_dir / "meta.lst")


def test_to_data_dir_with_gt(seed_dir: Path, tmp_path: Path):
    lst = write_lines(seed_dir / "meta.lst", [
        "b|Prompt b.|prompt-wavs/spk2-utt1.wav|Say b.|wavs/spk2-utt1.wav",
        "a|Prompt a.|prompt-wavs/spk1-utt1.wav|Say a.|wavs/spk1-utt1.wav",
    ])  # fmt: skip
    out = tmp_path / "test_seedtts"
    seedtts_to_data_dir(lst, out)
    assert read_lines(out / "text") == ["a Say a.", "b Say b."]
    assert read_lines(out / "utt2spk") == ["a a", "b b"]
    assert read_lines(out / "spk2utt") == ["a a", "b b"]
    assert read_lines(out / "prompt_text") == ["a Prompt a.", "b Prompt b."]
    assert read_lines(out / "prompt.scp") == [f"a {seed_dir}/prompt-wavs/spk1-utt1.wav", f"b {seed_dir}/prompt-wavs/spk2-utt1.wav"]
    assert read_lines(out / "wav.scp")[0] == f"a {seed_dir}/wavs/spk1-utt1.wav"
    assert validate_data_dir(out) == []
    assert set(DataDir.load(out).extra) == {"prompt.scp", "prompt_text"}


def test_to_data_dir_without_gt(seed_dir: Path, tmp_path: Path):
    lst = write_lines(seed_dir / "meta.lst", ["a|Prompt a.|prompt-wavs/spk1-utt1.wav|Say a."])
    seedtts_to_data_dir(lst, tmp_path / "d")
    assert not (tmp_path / "d" / "wav.scp").exists()
    assert validate_data_dir(tmp_path / "d", required=("text", "utt2spk")) == []


def test_to_data_dir_mixed_gt_is_an_error(seed_dir: Path, tmp_path: Path):
    lst = write_lines(seed_dir / "meta.lst", [
        "a|Prompt a.|prompt-wavs/spk1-utt1.wav|Say a.|wavs/spk1-utt1.wav",
        "b|Prompt b.|prompt-wavs/spk2-utt1.wav|Say b.",
    ])  # fmt: skip
    with pytest.raises(DataDirError, match=r"meta.lst:2: 'b' has no gt_wav while 1 other line"):
        seedtts_to_data_dir(lst, tmp_path / "d")
