"""Tests of ttsrl.data.datadir: key-value files, sort order, DataDir load/subset/write."""

import os
from pathlib import Path

import pytest
from data_helpers import read_lines, write_lines

from ttsrl.data.datadir import (
    LABEL_FILES,
    DataDir,
    DataDirError,
    read_kv,
    scan_kv,
    spk2utt_to_utt2spk,
    utt2spk_to_spk2utt,
    write_kv,
)


def test_write_read_round_trip_and_c_sort_order(tmp_path: Path):
    mapping = {"b": "2", "B": "x y", "a": "1", "é": "e", "_x": "u", "10": "t", "9": "n"}
    write_kv(tmp_path / "f", mapping)
    # C (byte) order: digits < upper case < '_' < lower case < non-ASCII
    assert [line.split()[0] for line in read_lines(tmp_path / "f")] == ["10", "9", "B", "_x", "a", "b", "é"]
    assert read_kv(tmp_path / "f") == mapping
    assert list(read_kv(tmp_path / "f")) == ["10", "9", "B", "_x", "a", "b", "é"]


def test_read_kv_keeps_insertion_order_and_values_with_spaces(tmp_path: Path):
    write_lines(tmp_path / "f", ["z  hello   world ", "a\tsox a.wav -t wav - |"])
    assert list(read_kv(tmp_path / "f").items()) == [("z", "hello   world"), ("a", "sox a.wav -t wav - |")]


def test_write_kv_joins_lists(tmp_path: Path):
    write_kv(tmp_path / "spk2utt", {"s2": ["c"], "s1": ["a", "b"]})
    assert read_lines(tmp_path / "spk2utt") == ["s1 a b", "s2 c"]


def test_write_kv_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "text"
    write_kv(target, {"a": "old"})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_kv(target, {"a": "new"})
    assert read_lines(target) == ["a old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text"]  # no temporary left behind


def test_write_kv_rejects_bad_ids(tmp_path: Path):
    with pytest.raises(DataDirError, match="invalid id"):
        write_kv(tmp_path / "f", {"a b": "x"})


@pytest.mark.parametrize(
    "lines, message",
    [
        (["a 1", "b"], "f:2: 'b' has no value"),
        (["a 1", "b 2", "a 3"], "f:3: duplicate id 'a' (first on line 1)"),
        (["a 1", "", "b 2"], "f:2: empty line"),
        (["a 1", " b 2"], "f:2: line starts with whitespace"),
        (["a 1\r"], "f:1: line ends with a carriage return"),
    ],
)
def test_read_kv_errors_name_file_and_line(tmp_path: Path, lines, message):
    write_lines(tmp_path / "f", lines)
    with pytest.raises(DataDirError) as e:
        read_kv(tmp_path / "f")
    assert str(e.value).startswith(f"{tmp_path / 'f'}:{message.split(':', 1)[1]}")


def test_read_kv_non_utf8(tmp_path: Path):
    (tmp_path / "text").write_bytes(b"a hello\nb caf\xe9\n")
    with pytest.raises(DataDirError, match=r"text:2: not valid UTF-8"):
        read_kv(tmp_path / "text")


def test_read_kv_empty_value_allowed(tmp_path: Path):
    write_lines(tmp_path / "text", ["a", "b hi"])
    assert read_kv(tmp_path / "text", allow_empty_value=True) == {"a": "", "b": "hi"}


def test_scan_kv_reports_first_unsorted_line(tmp_path: Path):
    write_lines(tmp_path / "f", ["a 1", "c 2", "b 3", "a0 4"])
    lines, problems = scan_kv(tmp_path / "f")
    assert len(lines) == 4
    assert [(p.lineno, p.kind) for p in problems] == [(3, "unsorted")]
    assert "'b' comes after 'c'" in str(problems[0])
    assert read_kv(tmp_path / "f") == {"a": "1", "c": "2", "b": "3", "a0": "4"}  # order not enforced


def test_spk_utt_conversions():
    utt2spk = {"s2-a": "s2", "s1-b": "s1", "s1-a": "s1"}
    assert utt2spk_to_spk2utt(utt2spk) == {"s1": ["s1-a", "s1-b"], "s2": ["s2-a"]}
    assert spk2utt_to_utt2spk({"s1": ["x", "y"], "s2": ["z"]}) == {"x": "s1", "y": "s1", "z": "s2"}
    with pytest.raises(DataDirError, match="'x' listed for 's1' and 's2'"):
        spk2utt_to_utt2spk({"s1": ["x"], "s2": ["x"]})


def test_datadir_load(data_dir: Path):
    d = DataDir.load(data_dir)
    assert d.utts == ["spk1-utt1", "spk1-utt2", "spk2-utt1", "spk2-utt2", "spk3-utt1", "spk3-utt2"]
    assert d.spk2utt == {"spk1": ["spk1-utt1", "spk1-utt2"], "spk2": ["spk2-utt1", "spk2-utt2"],
                         "spk3": ["spk3-utt1", "spk3-utt2"]}  # fmt: skip
    assert set(d.labels) == {"utt2gender", "utt2emo", "utt2dur"} and set(d.labels) <= set(LABEL_FILES)
    assert d.labels["utt2gender"]["spk2-utt1"] == "f"
    assert d.segments is None
    spec, seg = d.audio_spec("spk1-utt1")
    assert spec.endswith("spk1-utt1.wav") and seg is None


def test_datadir_write_round_trip_and_subset(data_dir: Path, tmp_path: Path):
    d = DataDir.load(data_dir)
    sub = d.subset(["spk1-utt2", "spk3-utt1"])
    sub.write(tmp_path / "sub")
    again = DataDir.load(tmp_path / "sub")
    assert again.utts == ["spk1-utt2", "spk3-utt1"]
    assert read_lines(tmp_path / "sub" / "spk2utt") == ["spk1 spk1-utt2", "spk3 spk3-utt1"]
    assert set(again.labels) == set(d.labels)
    assert again.labels["utt2emo"] == {u: d.labels["utt2emo"][u] for u in again.utts}
    assert list(again.wav_scp) == again.utts


def test_datadir_segments_and_stale_files(tmp_path: Path):
    d = DataDir(
        wav_scp={"rec1": "/a.wav"},
        text={"u1": "hi", "u2": "yo"},
        utt2spk={"u1": "s", "u2": "s"},
        segments={"u1": ("rec1", 0.0, 1.25), "u2": ("rec1", 1.25, -1)},
    )
    d.write(tmp_path / "d")
    assert read_lines(tmp_path / "d" / "segments") == ["u1 rec1 0 1.25", "u2 rec1 1.25 -1"]
    loaded = DataDir.load(tmp_path / "d")
    assert loaded.segments == {"u1": ("rec1", 0.0, 1.25), "u2": ("rec1", 1.25, -1.0)}
    assert loaded.audio_spec("u2") == ("/a.wav", (1.25, -1.0))
    # writing a dir without segments over it removes the stale segments file
    DataDir(wav_scp={"u1": "/a.wav"}, text={"u1": "hi"}, utt2spk={"u1": "s"}).write(tmp_path / "d")
    assert not (tmp_path / "d" / "segments").exists()


def test_datadir_load_bad_segments(tmp_path: Path):
    write_lines(tmp_path / "segments", ["u1 rec1 0.0"])
    with pytest.raises(DataDirError, match=r"segments:1: expected '<rec> <start> <end>'"):
        DataDir.load(tmp_path)


def test_datadir_load_not_a_dir(tmp_path: Path):
    with pytest.raises(DataDirError, match="not a directory"):
        DataDir.load(tmp_path / "nope")


def test_write_kv_rejects_line_breaks(tmp_path: Path):
    with pytest.raises(DataDirError, match="'a' contains a line break"):
        write_kv(tmp_path / "f", {"a": "two\nlines"})


def test_kaldi_text_and_the_final_newline(tmp_path: Path):
    from ttsrl.data.datadir import disallowed_whitespace, kaldi_text, scan_kv

    assert kaldi_text("a\u00a0b\u3000c\u2009d") == "a b c d" and kaldi_text("plain\ttab") == "plain\ttab"
    assert disallowed_whitespace("a\u00a0b\tc d\u3000") == ["\u00a0", "\u3000"]
    assert disallowed_whitespace("a\x0bb") == []  # a control character: reported as such, not as a space
    p = tmp_path / "text"
    p.write_bytes(b"u1 a\nu2 b")  # no newline at the end: readers accept it, validation (strict) does not
    assert read_kv(p) == {"u1": "a", "u2": "b"}
    assert [(x.lineno, x.kind) for x in scan_kv(p)[1]] == [(2, "no-final-newline")]
