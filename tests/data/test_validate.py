"""Tests of ttsrl.data.validate: a valid dir passes; each kind of problem is reported with
the file and line or the utterance it concerns; each rule of Kaldi's validate_data_dir.sh fails
in the default strict mode and what ttsrl writes passes it."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_helpers import read_lines, write_lines

from ttsrl.data.audio import load_audio, write_wav
from ttsrl.data.datadir import DataDir, DataDirError
from ttsrl.data.ops import fix_data_dir
from ttsrl.data.validate import validate_data_dir


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    return problems[0]


def edit(path: Path, fn) -> None:
    write_lines(path, fn(read_lines(path)))


def test_valid_dir_passes(data_dir: Path):
    assert validate_data_dir(data_dir) == []
    assert validate_data_dir(data_dir, sample_rate=None, check_audio=False) == []


def test_not_a_directory(tmp_path: Path):
    assert only(validate_data_dir(tmp_path / "nope")).endswith("nope: not a directory")


def test_missing_required_file(data_dir: Path):
    (data_dir / "text").unlink()
    assert only(validate_data_dir(data_dir)) == f"{data_dir}/text: missing (required)"
    assert validate_data_dir(data_dir, required=("wav.scp", "utt2spk")) == []


def test_unsorted(data_dir: Path):
    edit(data_dir / "text", lambda lines: [lines[1], lines[0], *lines[2:]])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg.startswith(f"{data_dir}/text:2: not sorted: 'spk1-utt1' comes after 'spk1-utt2'")


def test_duplicate_id(data_dir: Path):
    edit(data_dir / "utt2emo", lambda lines: [lines[0], lines[0].split()[0] + " sad", *lines[1:]])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg == f"{data_dir}/utt2emo:2: duplicate id 'spk1-utt1' (first on line 1)"


def test_utt_missing_from_wav_scp(data_dir: Path):
    edit(data_dir / "wav.scp", lambda lines: [x for x in lines if not x.startswith("spk2-utt1 ")])
    msg = only(validate_data_dir(data_dir))
    assert msg == f"{data_dir}/wav.scp: lacks 1 utterance(s) of utt2spk: spk2-utt1"


def test_id_not_in_utt2spk(data_dir: Path):
    edit(data_dir / "text", lambda lines: [*lines, "spk9-utt1 stray line"])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg == f"{data_dir}/text:7: 'spk9-utt1' is not in utt2spk"


def test_many_missing_ids_are_summarized(data_dir: Path):
    write_lines(data_dir / "text", [])
    msg = only(validate_data_dir(data_dir, check_audio=False, kaldi_strict=False))  # strict: also "empty file"
    assert msg == (
        f"{data_dir}/text: lacks 6 utterance(s) of utt2spk: "
        "spk1-utt1, spk1-utt2, spk2-utt1, spk2-utt2, spk3-utt1 ... (1 more)"
    )


def test_utt2spk_spk2utt_mismatch(data_dir: Path):
    write_lines(data_dir / "spk2utt", ["spk1 spk1-utt1", "spk2 spk1-utt2 spk2-utt1 spk2-utt2", "spk3 spk3-utt1 spk3-utt2"])
    problems = validate_data_dir(data_dir, check_audio=False)
    assert f"{data_dir}/spk2utt:1: utterances of 'spk1' differ from utt2spk (spk1-utt2); " in problems[0]
    assert problems[1].startswith(f"{data_dir}/spk2utt:2: utterances of 'spk2' differ from utt2spk (spk1-utt2)")
    assert len(problems) == 2


def test_spk2utt_unknown_speaker(data_dir: Path):
    edit(data_dir / "spk2utt", lambda lines: [*lines, "spk4 spk3-utt1"])
    problems = validate_data_dir(data_dir, check_audio=False)
    assert f"{data_dir}/spk2utt:4: 'spk3-utt1' is listed for 'spk3' and 'spk4'" in problems
    assert f"{data_dir}/spk2utt:4: speaker 'spk4' is not in utt2spk" in problems


def test_speaker_prefix_fails_kaldi_strict_and_warns_without(data_dir: Path, caplog: pytest.LogCaptureFixture):
    # Kaldi: `sort -k2 -C utt2spk` fails when sorting by utterance does not group the speakers
    edit(data_dir / "utt2spk", lambda lines: [x.replace(" spk1", " zz") for x in lines])
    write_lines(data_dir / "spk2utt", ["spk2 spk2-utt1 spk2-utt2", "spk3 spk3-utt1 spk3-utt2", "zz spk1-utt1 spk1-utt2"])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg.startswith(f"{data_dir}/utt2spk: sorting by utterance does not group speakers (2 utterance id(s) "
                          "without their speaker id as prefix, e.g. spk1-utt1, spk1-utt2)")
    assert "Kaldi's validate_data_dir.sh rejects this" in msg and "--kaldi_strict false" in msg
    with caplog.at_level(logging.WARNING):
        assert validate_data_dir(data_dir, check_audio=False, kaldi_strict=False) == []
    assert "does not group speakers" in caplog.text and "spk1-utt1" in caplog.text


def test_missing_audio(data_dir: Path):
    (data_dir / "wav" / "spk3-utt2.wav").unlink()
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/wav.scp:6: utterance 'spk3-utt2': audio file not found: ")
    assert validate_data_dir(data_dir, check_audio=False) == []


def test_unreadable_audio(data_dir: Path):
    (data_dir / "wav" / "spk1-utt2.wav").write_bytes(b"garbage" * 10)
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/wav.scp:2: utterance 'spk1-utt2': cannot decode audio from ")


def test_zero_length_audio(data_dir: Path):
    write_wav(data_dir / "wav" / "spk2-utt2.wav", np.zeros(0), 16000)
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/wav.scp:4: utterance 'spk2-utt2': zero-length audio")


def test_sample_rate_mismatch(data_dir: Path):
    write_wav(data_dir / "wav" / "spk2-utt1.wav", np.zeros(4410), 22050)
    msg = only(validate_data_dir(data_dir))
    assert msg == f"{data_dir}/wav.scp:3: utterance 'spk2-utt1': sample rate 22050 Hz, expected 16000 Hz"
    assert validate_data_dir(data_dir, sample_rate=None) == []


def test_pipes_in_wav_scp(data_dir: Path):
    edit(data_dir / "wav.scp", lambda lines: [f"{u} sox {p} -t wav - |" for u, p in (x.split() for x in lines)])
    assert validate_data_dir(data_dir) == []
    edit(data_dir / "wav.scp", lambda lines: [lines[0].replace("spk1-utt1.wav", "gone.wav"), *lines[1:]])
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/wav.scp:1: utterance 'spk1-utt1': command failed with exit code")
    assert "gone.wav" in msg


def test_empty_text(data_dir: Path):
    edit(data_dir / "text", lambda lines: [lines[0], "spk1-utt2", *lines[2:]])
    assert only(validate_data_dir(data_dir, check_audio=False)) == f"{data_dir}/text:2: empty text for 'spk1-utt2'"


def test_non_utf8_text(data_dir: Path):
    raw = (data_dir / "text").read_bytes().split(b"\n")
    raw[2] = b"spk2-utt1 caf\xe9"
    (data_dir / "text").write_bytes(b"\n".join(raw))
    problems = validate_data_dir(data_dir, check_audio=False)
    assert problems[0].startswith(f"{data_dir}/text:3: not valid UTF-8")
    # the undecodable line is then missing from text
    assert problems[1] == f"{data_dir}/text: lacks 1 utterance(s) of utt2spk: spk2-utt1"


def test_control_character_and_crlf_in_text(data_dir: Path):
    edit(data_dir / "text", lambda lines: [lines[0] + "\a", lines[1] + "\r", *lines[2:]])
    problems = validate_data_dir(data_dir, check_audio=False)
    assert f"{data_dir}/text:1: control character U+0007 in the text of 'spk1-utt1'" in problems
    assert any(p.startswith(f"{data_dir}/text:2: line ends with a carriage return") for p in problems)


def test_label_with_unknown_id(data_dir: Path):
    edit(data_dir / "utt2emo", lambda lines: [*lines, "spk9-utt9 happy"])
    assert only(validate_data_dir(data_dir, check_audio=False)) == f"{data_dir}/utt2emo:7: 'spk9-utt9' is not in utt2spk"


def test_label_missing_an_utt(data_dir: Path):
    edit(data_dir / "utt2gender", lambda lines: lines[1:])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg == f"{data_dir}/utt2gender: lacks 1 utterance(s) of utt2spk: spk1-utt1"


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("utt2gender", "male", "expected m or f"),
        ("utt2dur", "-0.5", "expected a positive number of seconds"),
        ("utt2dur", "abc", "expected a positive number of seconds"),
        ("utt2quality", "great", "expected a number or one of"),
        ("utt2age", "200", "expected a number in [0, 130]"),
        ("utt2lang", "English!", "expected a language code"),
        ("utt2emo", "very-happy!", "expected one token"),
        ("utt2num_frames", "1.5", "expected a positive integer"),
    ],
)
def test_invalid_label_value(data_dir: Path, name: str, value: str, reason: str):
    valid = {"utt2gender": "m", "utt2dur": "0.2", "utt2quality": "4.5", "utt2age": "30", "utt2lang": "en",
             "utt2emo": "happy", "utt2num_frames": "20"}[name]  # fmt: skip
    utts = [x.split()[0] for x in read_lines(data_dir / "utt2spk")]
    write_lines(data_dir / name, [f"{u} {value if u == 'spk1-utt2' else valid}" for u in utts])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg.startswith(f"{data_dir}/{name}:2: invalid value '{value}' for 'spk1-utt2' ({reason}")


@pytest.mark.parametrize("name, value", [("utt2quality", "good"), ("utt2quality", "3.2"), ("utt2age", "adult"),
                                         ("utt2lang", "en-us"), ("utt2lang", "cmn"), ("utt2custom", "anything goes")])  # fmt: skip
def test_valid_label_values(data_dir: Path, name: str, value: str):
    write_lines(data_dir / name, [f"{x.split()[0]} {value}" for x in read_lines(data_dir / "utt2spk")])
    assert validate_data_dir(data_dir, check_audio=False) == []


def make_segmented(data_dir: Path, segments: list[str]) -> Path:
    """Turn the toy dir into one recording (all tones concatenated, 1.2 s) cut by ``segments``."""
    utts = [x.split()[0] for x in read_lines(data_dir / "utt2spk")]
    wavs = [sf.read(data_dir / "wav" / f"{u}.wav")[0] for u in utts]
    write_wav(data_dir / "wav" / "rec1.wav", np.concatenate(wavs), 16000)
    write_lines(data_dir / "wav.scp", [f"rec1 {data_dir}/wav/rec1.wav"])
    write_lines(data_dir / "segments", segments)
    return data_dir


def good_segments() -> list[str]:
    utts = ["spk1-utt1", "spk1-utt2", "spk2-utt1", "spk2-utt2", "spk3-utt1", "spk3-utt2"]
    return [f"{u} rec1 {0.2 * i:.2f} {0.2 * (i + 1):.2f}" for i, u in enumerate(utts)]


def test_valid_segments(data_dir: Path):
    make_segmented(data_dir, good_segments())
    assert validate_data_dir(data_dir) == []


def test_segment_unknown_recording(data_dir: Path):
    segs = good_segments()
    segs[2] = segs[2].replace("rec1", "rec7")
    make_segmented(data_dir, segs)
    assert only(validate_data_dir(data_dir)) == f"{data_dir}/segments:3: 'spk2-utt1' references recording 'rec7' not in wav.scp"


def test_segment_end_before_start(data_dir: Path):
    segs = good_segments()
    segs[1] = "spk1-utt2 rec1 0.40 0.30"
    make_segmented(data_dir, segs)
    assert only(validate_data_dir(data_dir)) == f"{data_dir}/segments:2: 'spk1-utt2' end 0.3 <= start 0.4"


def test_segment_past_end_of_recording(data_dir: Path):
    segs = good_segments()
    segs[5] = "spk3-utt2 rec1 1.00 3.00"
    make_segmented(data_dir, segs)
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/segments:6: 'spk3-utt2' ends at 3.0 s, after the end of recording 'rec1'")


def test_malformed_segment_line(data_dir: Path):
    segs = good_segments()
    segs[0] = "spk1-utt1 rec1 zero 0.2"
    make_segmented(data_dir, segs)
    assert only(validate_data_dir(data_dir)).startswith(f"{data_dir}/segments:1: expected '<utt> <rec> <start> <end>'")


def test_several_problems_all_reported(data_dir: Path):
    (data_dir / "wav" / "spk1-utt1.wav").unlink()
    edit(data_dir / "utt2gender", lambda lines: [lines[0].replace(" m", " x"), *lines[1:]])
    edit(data_dir / "text", lambda lines: [*lines[:-1], "spk3-utt2"])
    assert len(validate_data_dir(data_dir)) == 3


def test_utt2spk_with_three_fields_names_the_line(data_dir: Path):
    # not "spk2utt lacks speaker 'spk1 junk'": the line, and that it has too many fields
    edit(data_dir / "utt2spk", lambda lines: [lines[0] + " junk", *lines[1:]])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg == f"{data_dir}/utt2spk:1: 3 fields, expected 2 ('<utt> <spk>'): 'spk1-utt1 spk1 junk'"
    with pytest.raises(DataDirError, match=r"utt2spk:1: 3 fields, expected 2"):
        DataDir.load(data_dir)


# -- Kaldi's utils/validate_data_dir.sh (and validate_text.pl): each rule fails in strict mode ------------------
def test_missing_spk2utt(data_dir: Path):
    (data_dir / "spk2utt").unlink()
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg.startswith(f"{data_dir}/spk2utt: missing (Kaldi requires it beside utt2spk")
    assert validate_data_dir(data_dir, check_audio=False, kaldi_strict=False) == []


def test_spk2utt_utterances_out_of_order(data_dir: Path):
    edit(data_dir / "spk2utt", lambda lines: ["spk1 spk1-utt2 spk1-utt1", *lines[1:]])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg.startswith(f"{data_dir}/spk2utt:1: the utterances of 'spk1' are not in sorted order "
                          "('spk1-utt2' before 'spk1-utt1')")
    assert validate_data_dir(data_dir, check_audio=False, kaldi_strict=False) == []


@pytest.mark.parametrize("name", ["text", "utt2spk", "spk2utt", "wav.scp", "utt2emo"])
def test_no_newline_at_the_end(data_dir: Path, name: str):
    path = data_dir / name
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    n = len(read_lines(path))
    assert only(validate_data_dir(data_dir, check_audio=False)) == (
        f"{path}:{n}: no newline at the end of the file (Kaldi's validate_data_dir.sh rejects it)")
    assert validate_data_dir(data_dir, check_audio=False, kaldi_strict=False) == []


@pytest.mark.parametrize("space, name", [("\u00a0", "NO-BREAK SPACE"), ("\u3000", "IDEOGRAPHIC SPACE"),
                                         ("\u2009", "THIN SPACE")])
def test_unicode_space_in_a_transcript(data_dir: Path, space: str, name: str):
    edit(data_dir / "text", lambda lines: [lines[0], lines[1].replace(" ", space, 1) + f"{space}two", *lines[2:]])
    msg = only(validate_data_dir(data_dir, check_audio=False))
    assert msg.startswith(f"{data_dir}/text:2: whitespace U+{ord(space):04X} ({name}) in the text of 'spk1-utt2'")
    assert validate_data_dir(data_dir, check_audio=False, kaldi_strict=False) == []
    edit(data_dir / "text", lambda lines: [lines[0], lines[1].replace(space, "\t"), *lines[2:]])
    assert validate_data_dir(data_dir, check_audio=False) == []  # tab is allowed


def test_kaldi_reserved_symbols_unassigned_code_points_tilde_and_empty_files(data_dir: Path):
    edit(data_dir / "text", lambda lines: [lines[0] + " <s>", lines[1] + " #0", lines[2] + " \u0378", *lines[3:]])
    problems = validate_data_dir(data_dir, check_audio=False)
    assert any(p.startswith(f"{data_dir}/text:1: the text of 'spk1-utt1' holds '<s>'") for p in problems)
    assert any(p.startswith(f"{data_dir}/text:2: the text of 'spk1-utt2' holds '#0'") for p in problems)
    assert any(p.startswith(f"{data_dir}/text:3: unassigned code point U+0378") for p in problems)
    assert len(problems) == 3
    edit(data_dir / "text", lambda lines: [x.replace(" <s>", " a#0b <sx>").replace(" #0", "").replace(" \u0378", "")
                                           for x in lines])  # fmt: skip
    assert validate_data_dir(data_dir, check_audio=False) == []  # not whole words
    edit(data_dir / "wav.scp", lambda lines: [lines[0].split()[0] + " ~/a.wav", *lines[1:]])
    assert only(validate_data_dir(data_dir, check_audio=False)).startswith(
        f"{data_dir}/wav.scp:1: 'spk1-utt1': a path starting with '~'")
    for name in ("wav.scp", "text", "utt2gender", "utt2emo", "utt2dur", "utt2spk", "spk2utt"):
        write_lines(data_dir / name, [])
    problems = validate_data_dir(data_dir, check_audio=False, required=())
    assert f"{data_dir}/utt2spk: empty file (Kaldi rejects it)" in problems
    assert f"{data_dir}/spk2utt: empty file (Kaldi rejects it)" in problems


def test_recording_used_by_no_segment(data_dir: Path):
    make_segmented(data_dir, good_segments())
    edit(data_dir / "wav.scp", lambda lines: [*lines, f"rec2 {data_dir}/wav/rec1.wav"])
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/wav.scp: 1 recording(s) used by no segment: rec2")


def test_what_ttsrl_writes_passes_kaldi_strict(data_dir: Path, tmp_path: Path):
    # transcripts with Unicode spaces, written by DataDir.write and repaired by fix_data_dir
    d = DataDir.load(data_dir)
    d.text = {u: t.replace(" ", "\u00a0") + "\u3000end" for u, t in d.text.items()}
    d.write(tmp_path / "written")
    assert validate_data_dir(tmp_path / "written") == []
    assert read_lines(tmp_path / "written" / "text")[0].endswith(" end")
    (data_dir / "spk2utt").unlink()
    edit(data_dir / "text", lambda lines: [lines[0] + "\u00a0x", *lines[1:]])
    path = data_dir / "utt2emo"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert len(validate_data_dir(data_dir)) == 3
    report = fix_data_dir(data_dir)
    assert report.num_dropped == 0
    assert any("newline added" in n for n in report.notes) and any("Unicode spaces" in n for n in report.notes)
    assert validate_data_dir(data_dir) == []


def test_fix_drops_a_three_field_utt2spk_line(data_dir: Path):
    edit(data_dir / "utt2spk", lambda lines: [lines[0] + " junk", *lines[1:]])
    report = fix_data_dir(data_dir)
    assert report.dropped["utt2spk line with more than 2 fields"] == ["spk1-utt1"]
    assert validate_data_dir(data_dir) == []


# -- audio that decodes but is not what the data dir says -------------------------------------------------------
def test_truncated_wav_and_stale_utt2dur(data_dir: Path):
    wav = data_dir / "wav" / "spk2-utt1.wav"
    write_wav(wav, 0.3 * np.sin(np.arange(16000) / 10.0), 16000)  # 1 s
    raw = wav.read_bytes()
    wav.write_bytes(raw[: 44 + 16000])  # the data chunk cut in half: soundfile reads 0.5 s without a word
    assert sf.info(wav).frames == 8000
    edit(data_dir / "utt2dur", lambda lines: [x.replace("spk2-utt1 0.200", "spk2-utt1 1.000") for x in lines])
    problems = validate_data_dir(data_dir)
    assert len(problems) == 2, problems
    assert problems[0] == (f"{data_dir}/wav.scp:3: utterance 'spk2-utt1': truncated WAV: the header declares 32000 "
                           f"bytes of audio, the file holds 16000 ({wav})")
    assert problems[1].startswith(f"{data_dir}/utt2dur:3: 'spk2-utt1' lasts 1 s by utt2dur but 0.500 s by its audio")
    write_wav(wav, np.zeros(16000), 16000)  # a complete 1 s file: utt2dur is right again
    assert validate_data_dir(data_dir) == []


def test_opposite_phase_stereo(data_dir: Path, caplog: pytest.LogCaptureFixture):
    wav = data_dir / "wav" / "spk3-utt1.wav"
    x = 0.3 * np.sin(np.arange(3200) / 5.0)
    write_wav(wav, np.stack([x, -x], axis=1), 16000)
    msg = only(validate_data_dir(data_dir))
    assert msg.startswith(f"{data_dir}/wav.scp:5: utterance 'spk3-utt1': its 2 channels cancel when averaged to "
                          "mono (the mix is ")
    with caplog.at_level(logging.WARNING, logger="ttsrl.data.audio"):
        mono, _ = load_audio(str(wav))
    assert np.abs(mono).max() < 1e-3 and "channels cancel when averaged to mono" in caplog.text
    write_wav(wav, np.stack([x, 0.5 * x], axis=1), 16000)  # ordinary stereo
    assert validate_data_dir(data_dir) == []
