"""ttsrl.data.corpus: the helpers behind the recipes of real corpora."""

import tarfile

import pytest

from ttsrl.data.corpus import (
    CorpusError,
    SkipReport,
    Utterance,
    age_group,
    check_utterances,
    extract,
    fetch,
    file_hash,
    pick_prompts,
    wav_spec,
    write_data_dir,
)
from ttsrl.data.datadir import read_kv
from ttsrl.data.validate import AGE_CLASSES


def _utt(utt, spk, text="some words", **labels):
    return Utterance(utt, spk, f"/db/{utt}.wav", text, labels)


def test_age_groups_are_the_data_dir_classes():
    groups = [age_group(a) for a in (0, 12, 13, 19, 20, 29, 30, 44, 45, 59, 60, 99)]
    assert groups == ["child", "child", "teen", "teen", "young", "young", "adult", "adult",
                      "middle", "middle", "senior", "senior"]
    assert set(groups) == set(AGE_CLASSES)
    with pytest.raises(ValueError):
        age_group(-1)


def test_wav_spec_pipes_only_what_needs_it():
    assert wav_spec("/db/a.wav", 16000, 16000) == "/db/a.wav"
    assert wav_spec("/db/a.wav", 16000, 22050) == "sox -R /db/a.wav -t wav -r 16000 -b 16 - |"
    assert wav_spec("/db/a.flac", 48000, 48000).startswith("sox -R /db/a.flac ")
    assert wav_spec("/my db/a.wav", 16000, 16000) == "sox -R '/my db/a.wav' -t wav -r 16000 -b 16 - |"


def test_check_utterances_rejects_what_a_data_dir_cannot_hold():
    check_utterances([_utt("200-a", "200"), _utt("2002-a", "2002")])
    with pytest.raises(ValueError, match="speaker order"):  # '_' sorts after digits
        check_utterances([_utt("200_a", "200"), _utt("2002_a", "2002")])
    with pytest.raises(ValueError, match="duplicate"):
        check_utterances([_utt("s-a", "s"), _utt("s-a", "s")])
    with pytest.raises(ValueError, match="does not start with"):
        check_utterances([_utt("a-1", "b")])
    with pytest.raises(ValueError, match="labels"):
        check_utterances([_utt("s-a", "s", gender="f"), _utt("s-b", "s")])
    with pytest.raises(ValueError, match="empty"):
        check_utterances([_utt("s-a", "s", text=" ")])


def test_pick_prompts_prefers_3_to_10_seconds_and_wraps():
    utts = [_utt(f"s-{i}", "s") for i in range(4)] + [_utt("t-0", "t"), _utt("t-1", "t")]
    durations = {"s-0": 4.0, "s-1": 1.0, "s-2": 12.0, "s-3": 1.0, "t-0": 1.0, "t-1": 1.0}
    got = {u: p.utt for u, p in pick_prompts(utts, durations).items()}
    assert got["s-1"] == "s-0" and got["s-2"] == "s-0" and got["s-3"] == "s-0"
    assert got["s-0"] == "s-1"  # no other 3-10 s utterance: the next one
    assert got["t-0"] == "t-1" and got["t-1"] == "t-0"
    with pytest.raises(ValueError, match="single utterance cannot be prompted: u"):
        pick_prompts([_utt("u-0", "u")])


def test_write_data_dir_keeps_the_old_dir_on_failure(tmp_path):
    out = tmp_path / "data" / "test"
    utts = [_utt("s-0", "s", lang="en"), _utt("s-1", "s", lang="en")]
    write_data_dir(out, utts, pick_prompts(utts))
    assert read_kv(out / "spk2utt") == {"s": "s-0 s-1"}
    assert read_kv(out / "prompt.scp") == {"s-0": "/db/s-1.wav", "s-1": "/db/s-0.wav"}
    assert read_kv(out / "utt2lang") == {"s-0": "en", "s-1": "en"}
    with pytest.raises(ValueError):
        write_data_dir(out, [_utt("x-0", "y")])
    assert read_kv(out / "text") == {"s-0": "some words", "s-1": "some words"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["test"]  # no temporary left


def test_skip_report(tmp_path):
    report = SkipReport()
    assert "none skipped" in report.summary(3, "c")
    report.add("without text", "b")
    report.add("without text", "a")
    assert report.summary(5, "c") == "c: skipped 2 of 5 utterances:\n  2 without text (a, b)"
    report.write(tmp_path / "local" / "skipped")
    assert read_kv(tmp_path / "local" / "skipped") == {"a": "without text", "b": "without text"}


def test_fetch_checks_the_checksum(tmp_path):
    src = tmp_path / "a.tar.gz"
    src.write_bytes(b"not really an archive")
    md5 = file_hash(src)
    got = fetch(src.as_uri(), tmp_path / "dl", {"a.tar.gz": f"md5:{md5}"})
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(CorpusError, match="expected 0+ for"):
        fetch(src.as_uri(), tmp_path / "dl2", {"a.tar.gz": "md5:" + "0" * 32})
    with pytest.raises(CorpusError, match="could not download http://127.0.0.1:9/x.zip.*layout: CORPUS/x"):
        fetch("http://127.0.0.1:9/x.zip", tmp_path / "dl3", layout="CORPUS/x")
    with pytest.raises(CorpusError, match="neither a tar nor a zip"):
        extract(got, tmp_path / "out")


def test_extract_refuses_members_outside(tmp_path):
    evil = tmp_path / "evil.tar"
    (tmp_path / "f").write_text("x")
    with tarfile.open(evil, "w") as tf:
        tf.add(tmp_path / "f", arcname="../escaped")
    with pytest.raises(CorpusError, match="outside"):
        extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()
    assert list((tmp_path / "out").iterdir()) == []
