"""Tests of ttsrl.data.ops: fix (with its report and backups), split, subset, combine."""

import logging
from pathlib import Path

import pytest
from data_helpers import read_lines, write_lines

from ttsrl.data.datadir import DataDir, DataDirError
from ttsrl.data.ops import combine_data, fix_data_dir, split_data, subset_data_dir
from ttsrl.data.validate import validate_data_dir

UTTS = ["spk1-utt1", "spk1-utt2", "spk2-utt1", "spk2-utt2", "spk3-utt1", "spk3-utt2"]


def drop_line(path: Path, key: str) -> None:
    write_lines(path, [x for x in read_lines(path) if x.split()[0] != key])


# ------------------------------------------------------------------------------ fix
def test_fix_reports_dropped_and_keeps_backups(data_dir: Path, caplog: pytest.LogCaptureFixture):
    drop_line(data_dir / "wav.scp", "spk2-utt1")
    text = read_lines(data_dir / "text")
    text[5] = "spk3-utt2"  # empty text
    write_lines(data_dir / "text", [*reversed(text), "spk9-utt1 not in utt2spk"])  # unsorted too
    original_text = (data_dir / "text").read_text()
    with caplog.at_level(logging.INFO):
        report = fix_data_dir(data_dir)
    assert report.kept == 4 and report.num_dropped == 3
    assert report.dropped == {
        "missing from utt2spk": ["spk9-utt1"],
        "empty text": ["spk3-utt2"],
        "missing from wav.scp": ["spk2-utt1"],
    }
    assert "text was not sorted; sorted" in report.notes
    # logged, with the ids
    assert "dropped 1 missing from wav.scp: spk2-utt1" in caplog.text
    assert "dropped 1 empty text: spk3-utt2" in caplog.text
    # written down next to the backups
    dropped = read_lines(data_dir / ".backup" / "dropped.txt")
    assert "spk2-utt1 missing from wav.scp" in dropped and "spk3-utt2 empty text" in dropped
    assert "# missing from utt2spk: 1" in dropped
    assert (data_dir / ".backup" / "text").read_text() == original_text
    assert (data_dir / ".backup" / "utt2gender").exists()
    # the result is consistent everywhere
    kept = ["spk1-utt1", "spk1-utt2", "spk2-utt2", "spk3-utt1"]
    assert DataDir.load(data_dir).utts == kept
    assert [x.split()[0] for x in read_lines(data_dir / "utt2emo")] == kept
    assert read_lines(data_dir / "spk2utt") == ["spk1 spk1-utt1 spk1-utt2", "spk2 spk2-utt2", "spk3 spk3-utt1"]
    assert validate_data_dir(data_dir) == []


def test_a_second_fix_keeps_the_first_backup(data_dir: Path):
    """Kaldi's fix_data_dir.sh overwrites .backup/ with already-fixed files on a second run; here each run
    gets its own folder (.backup, .backup.2, ...), and dropped.txt is written atomically."""
    drop_line(data_dir / "wav.scp", "spk2-utt1")
    original = (data_dir / "text").read_text()
    first = fix_data_dir(data_dir)
    once_fixed = (data_dir / "text").read_text()
    drop_line(data_dir / "utt2spk", "spk3-utt2")
    second = fix_data_dir(data_dir)
    assert first.backup_dir == str(data_dir / ".backup") and second.backup_dir == str(data_dir / ".backup.2")
    assert (data_dir / ".backup" / "text").read_text() == original  # the originals survive
    assert (data_dir / ".backup.2" / "text").read_text() == once_fixed
    assert "spk2-utt1 missing from wav.scp" in read_lines(data_dir / ".backup" / "dropped.txt")
    assert "spk3-utt2 missing from utt2spk" in read_lines(data_dir / ".backup.2" / "dropped.txt")
    assert fix_data_dir(data_dir).backup_dir == str(data_dir / ".backup.3")
    assert not [p for p in data_dir.rglob(".*") if p.is_file()]  # no temporary file of the atomic writer left


def test_fix_nothing_to_drop_still_reports(data_dir: Path):
    report = fix_data_dir(data_dir)
    assert report.kept == 6 and report.dropped == {}
    assert read_lines(data_dir / ".backup" / "dropped.txt")[0].endswith("kept 6 utterance(s), dropped 0")


def test_fix_duplicates_malformed_lines_and_labels(data_dir: Path):
    lines = read_lines(data_dir / "utt2spk")
    write_lines(data_dir / "utt2spk", [lines[0], lines[0], *lines[1:], "spk3-utt2 spkX", "broken"])
    gender = read_lines(data_dir / "utt2gender")
    gender[1] = "spk1-utt2 unknown"
    write_lines(data_dir / "utt2gender", gender)
    report = fix_data_dir(data_dir)
    assert report.dropped["conflicting duplicate lines in utt2spk"] == ["spk3-utt2"]
    assert report.dropped["(malformed line removed from utt2spk)"] == ["utt2spk:9"]
    assert report.dropped["invalid value in utt2gender"] == ["spk1-utt2"]
    assert any("repeated line for 'spk1-utt1' removed" in n for n in report.notes)
    assert report.num_dropped == 2
    assert validate_data_dir(data_dir) == []


def test_fix_with_segments_drops_unused_recordings(data_dir: Path):
    write_lines(data_dir / "wav.scp", [f"rec1 {data_dir}/wav/spk1-utt1.wav", f"rec2 {data_dir}/wav/spk1-utt2.wav"])
    write_lines(data_dir / "segments", [
        "spk1-utt1 rec1 0 0.1", "spk1-utt2 rec1 0.1 0.2", "spk2-utt1 rec1 0.15 0.1",
        "spk2-utt2 rec3 0 0.1", "spk3-utt1 rec1 0 -1", "spk3-utt2 rec1 0 0.05",
    ])  # fmt: skip
    report = fix_data_dir(data_dir)
    assert report.dropped["segment end <= start or start < 0"] == ["spk2-utt1"]
    assert report.dropped["recording missing from wav.scp"] == ["spk2-utt2"]
    assert report.dropped["(recording not used by any kept segment, removed from wav.scp)"] == ["rec2"]
    assert [x.split()[0] for x in read_lines(data_dir / "wav.scp")] == ["rec1"]
    assert validate_data_dir(data_dir) == []


def test_fix_refuses_to_empty_a_dir(data_dir: Path):
    write_lines(data_dir / "wav.scp", ["other /x.wav"])
    before = (data_dir / "text").read_text()
    with pytest.raises(DataDirError, match="no utterance is present in every file; nothing written"):
        fix_data_dir(data_dir)
    assert (data_dir / "text").read_text() == before
    assert not (data_dir / ".backup").exists()


def test_fix_missing_required(data_dir: Path):
    (data_dir / "utt2spk").unlink()
    with pytest.raises(DataDirError, match="missing required file"):
        fix_data_dir(data_dir)


# ------------------------------------------------------------------------------ split
def test_split_per_utt(data_dir: Path):
    parts = split_data(data_dir, 4)
    assert parts == [str(data_dir / "split4" / str(k)) for k in (1, 2, 3, 4)]
    got = [DataDir.load(p).utts for p in parts]
    assert [u for part in got for u in part] == UTTS  # contiguous, nothing lost
    assert sorted(len(part) for part in got) == [1, 1, 2, 2]
    for p in parts:
        assert validate_data_dir(p) == []
        assert (Path(p) / "utt2emo").exists() and (Path(p) / "spk2utt").exists()


def test_split_per_spk_keeps_speakers_whole(data_dir: Path):
    parts = split_data(data_dir, 2, per_spk=True)
    spks = [set(DataDir.load(p).utt2spk.values()) for p in parts]
    assert spks[0].isdisjoint(spks[1]) and spks[0] | spks[1] == {"spk1", "spk2", "spk3"}
    with pytest.raises(DataDirError, match="cannot split 3 speaker"):
        split_data(data_dir, 4, per_spk=True)


def test_split_replaces_previous_and_checks_n(data_dir: Path):
    split_data(data_dir, 2)
    (data_dir / "split2" / "1" / "stale").write_text("x")
    split_data(data_dir, 2)
    assert not (data_dir / "split2" / "1" / "stale").exists()
    with pytest.raises(DataDirError, match="cannot split 6 utterance"):
        split_data(data_dir, 7)
    with pytest.raises(DataDirError, match=">= 1"):
        split_data(data_dir, 0)


def test_split_with_segments(data_dir: Path):
    write_lines(data_dir / "wav.scp", [f"rec{i} {data_dir}/wav/{u}.wav" for i, u in enumerate(UTTS)])
    write_lines(data_dir / "segments", [f"{u} rec{i} 0 0.1" for i, u in enumerate(UTTS)])
    parts = split_data(data_dir, 3)
    assert read_lines(Path(parts[1]) / "segments") == ["spk2-utt1 rec2 0 0.1", "spk2-utt2 rec3 0 0.1"]
    assert [x.split()[0] for x in read_lines(Path(parts[1]) / "wav.scp")] == ["rec2", "rec3"]
    assert validate_data_dir(parts[1]) == []


# ------------------------------------------------------------------------------ subset
def test_subset_first_last(data_dir: Path, tmp_path: Path):
    assert subset_data_dir(data_dir, tmp_path / "f", first=2).utts == UTTS[:2]
    assert subset_data_dir(data_dir, tmp_path / "l", last=3).utts == UTTS[-3:]
    assert validate_data_dir(tmp_path / "l") == []
    assert read_lines(tmp_path / "l" / "spk2utt") == ["spk2 spk2-utt2", "spk3 spk3-utt1 spk3-utt2"]
    with pytest.raises(DataDirError, match="asked for first 7 utterance"):
        subset_data_dir(data_dir, tmp_path / "x", first=7)


def test_subset_lists(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    write_lines(tmp_path / "ids", ["spk3-utt1", "spk1-utt2 extra fields are ignored", "nobody"])
    with caplog.at_level(logging.WARNING):
        sub = subset_data_dir(data_dir, tmp_path / "u", utt_list=tmp_path / "ids")
    assert sub.utts == ["spk1-utt2", "spk3-utt1"]
    assert "1 id(s)" in caplog.text and "nobody" in caplog.text
    write_lines(tmp_path / "spks", ["spk2"])
    assert subset_data_dir(data_dir, tmp_path / "s", spk_list=tmp_path / "spks").utts == ["spk2-utt1", "spk2-utt2"]
    assert validate_data_dir(tmp_path / "s") == []
    write_lines(tmp_path / "none", ["nobody"])
    with pytest.raises(DataDirError, match="no utterance selected"):
        subset_data_dir(data_dir, tmp_path / "n", utt_list=tmp_path / "none")


def test_subset_shortest(data_dir: Path, tmp_path: Path):
    durs = ["0.5", "0.1", "0.3", "0.2", "0.9", "0.05"]
    write_lines(data_dir / "utt2dur", [f"{u} {d}" for u, d in zip(UTTS, durs, strict=True)])
    sub = subset_data_dir(data_dir, tmp_path / "short", shortest=3)
    assert sub.utts == ["spk1-utt2", "spk2-utt2", "spk3-utt2"]
    assert read_lines(tmp_path / "short" / "utt2dur") == ["spk1-utt2 0.1", "spk2-utt2 0.2", "spk3-utt2 0.05"]


def test_subset_needs_one_selector(data_dir: Path, tmp_path: Path):
    with pytest.raises(DataDirError, match="exactly one"):
        subset_data_dir(data_dir, tmp_path / "x")
    with pytest.raises(DataDirError, match="exactly one"):
        subset_data_dir(data_dir, tmp_path / "x", first=1, last=1)
    with pytest.raises(DataDirError, match="is the source"):
        subset_data_dir(data_dir, data_dir, first=1)


# ------------------------------------------------------------------------------ combine
def test_combine_round_trip(data_dir: Path, tmp_path: Path):
    subset_data_dir(data_dir, tmp_path / "a", first=2)
    subset_data_dir(data_dir, tmp_path / "b", last=4)
    combined = combine_data(tmp_path / "all", tmp_path / "a", tmp_path / "b")
    assert combined.utts == UTTS
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2gender", "utt2emo", "utt2dur"):
        assert read_lines(tmp_path / "all" / name) == read_lines(data_dir / name), name
    assert validate_data_dir(tmp_path / "all") == []


def test_combine_duplicate_ids(data_dir: Path, tmp_path: Path):
    subset_data_dir(data_dir, tmp_path / "a", first=3)
    subset_data_dir(data_dir, tmp_path / "b", last=4)
    with pytest.raises(DataDirError) as e:
        combine_data(tmp_path / "all", tmp_path / "a", tmp_path / "b")
    assert "1 duplicate utterance id(s): 'spk2-utt1'" in str(e.value) and str(tmp_path / "b") in str(e.value)
    assert not (tmp_path / "all").exists()


def test_combine_partial_labels_and_mixed_segments(data_dir: Path, tmp_path: Path, caplog):
    subset_data_dir(data_dir, tmp_path / "a", first=2)
    subset_data_dir(data_dir, tmp_path / "b", last=4)
    (tmp_path / "a" / "utt2emo").unlink()
    wav = read_lines(tmp_path / "b" / "wav.scp")
    write_lines(tmp_path / "b" / "wav.scp", [f"r{i} {x.split()[1]}" for i, x in enumerate(wav)])
    write_lines(tmp_path / "b" / "segments", [f"{x.split()[0]} r{i} 0 0.1" for i, x in enumerate(wav)])
    with caplog.at_level(logging.WARNING):
        combine_data(tmp_path / "all", tmp_path / "a", tmp_path / "b")
    assert "utt2emo is not in every input" in caplog.text
    assert not (tmp_path / "all" / "utt2emo").exists()
    assert read_lines(tmp_path / "all" / "segments")[:3] == [
        "spk1-utt1 spk1-utt1 0 -1", "spk1-utt2 spk1-utt2 0 -1", "spk2-utt1 r0 0 0.1",
    ]  # fmt: skip
    assert validate_data_dir(tmp_path / "all") == []


def test_combine_conflicting_recordings(data_dir: Path, tmp_path: Path):
    for name, sel in (("a", dict(first=1)), ("b", dict(last=1))):
        subset_data_dir(data_dir, tmp_path / name, **sel)
        utt = read_lines(tmp_path / name / "utt2spk")[0].split()[0]
        write_lines(tmp_path / name / "wav.scp", [f"rec {data_dir}/wav/{utt}.wav"])
        write_lines(tmp_path / name / "segments", [f"{utt} rec 0 0.1"])
    with pytest.raises(DataDirError, match="recording 'rec' has different wav.scp entries"):
        combine_data(tmp_path / "all", tmp_path / "a", tmp_path / "b")
