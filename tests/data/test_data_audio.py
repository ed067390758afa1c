"""Tests of ttsrl.data.audio: paths, pipes, segments, resampling, info, atomic writes."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ttsrl.data.audio import AudioError, audio_info, iter_data_dir_audio, load_audio, utt_durations, write_wav
from ttsrl.data.datadir import DataDir


@pytest.fixture
def wav_path(data_dir: Path) -> str:
    return str(data_dir / "wav" / "spk1-utt1.wav")


def test_load_path(wav_path: str):
    wav, sr = load_audio(wav_path)
    assert sr == 16000 and wav.shape == (3200,) and wav.dtype == np.float32
    assert 0.2 < np.abs(wav).max() <= 1.0


def test_resample(wav_path: str):
    wav, sr = load_audio(wav_path, sample_rate=8000)
    assert sr == 8000 and wav.shape == (1600,) and wav.dtype == np.float32
    same, sr = load_audio(wav_path, sample_rate=16000)
    assert same.shape == (3200,)


def test_segment_crop(wav_path: str):
    full, _ = load_audio(wav_path)
    part, sr = load_audio(wav_path, segment=(0.05, 0.15))
    assert part.shape == (1600,)
    np.testing.assert_array_equal(part, full[800:2400])
    tail, _ = load_audio(wav_path, segment=(0.1, -1))
    np.testing.assert_array_equal(tail, full[1600:])
    with pytest.raises(AudioError, match="after the end"):
        load_audio(wav_path, segment=(0.5, 0.6))
    with pytest.raises(AudioError, match="invalid segment"):
        load_audio(wav_path, segment=(0.1, 0.05))


def test_pipe_matches_file(wav_path: str):
    full, _ = load_audio(wav_path)
    piped, sr = load_audio(f"sox {wav_path} -t wav - |")
    assert sr == 16000
    np.testing.assert_allclose(piped, full, atol=1e-4)
    part, _ = load_audio(f"sox {wav_path} -t wav - |", segment=(0.05, 0.15))
    np.testing.assert_allclose(part, full[800:2400], atol=1e-4)
    resampled, sr = load_audio(f"sox {wav_path} -t wav -r 8000 - |")
    assert sr == 8000 and abs(resampled.shape[0] - 1600) <= 2


def test_failing_pipe_names_command_and_stderr(tmp_path: Path):
    spec = f"sox {tmp_path}/missing.wav -t wav - |"
    with pytest.raises(AudioError) as e:
        load_audio(spec)
    msg = str(e.value)
    assert "command failed with exit code" in msg
    assert f"sox {tmp_path}/missing.wav -t wav -" in msg
    assert "stderr:" in msg and "missing.wav" in msg.split("stderr:")[1]


def test_pipe_failure_in_the_middle_of_a_pipeline(wav_path: str):
    # pipefail: the first command fails although the last one succeeds
    with pytest.raises(AudioError, match="exit code"):
        load_audio(f"false | sox {wav_path} -t wav - |")


def test_pipe_without_output():
    with pytest.raises(AudioError, match="wrote no audio"):
        load_audio("true |")


def test_missing_and_undecodable_file(tmp_path: Path):
    with pytest.raises(AudioError, match="audio file not found"):
        load_audio(str(tmp_path / "nope.wav"))
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(AudioError, match="cannot decode audio"):
        load_audio(str(tmp_path / "junk.wav"))


def test_multichannel_is_averaged(tmp_path: Path):
    stereo = np.stack([np.full(100, 0.5), np.full(100, -0.1)], axis=1)
    sf.write(tmp_path / "st.wav", stereo, 16000, subtype="PCM_16")
    wav, _ = load_audio(str(tmp_path / "st.wav"))
    assert wav.shape == (100,)
    np.testing.assert_allclose(wav, 0.2, atol=1e-3)
    assert audio_info(str(tmp_path / "st.wav")).channels == 2


def test_audio_info(wav_path: str):
    info = audio_info(wav_path)
    assert (info.sample_rate, info.frames, info.channels) == (16000, 3200, 1)
    assert info.duration == pytest.approx(0.2)
    piped = audio_info(f"sox {wav_path} -t wav -r 8000 - |")
    assert piped.sample_rate == 8000 and abs(piped.frames - 1600) <= 2


def test_write_wav_is_pcm16_and_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "o" / "a.wav"
    write_wav(out, np.array([0.0, 0.5, 2.0, -3.0], dtype=np.float32), 22050)
    info = sf.info(out)
    assert info.subtype == "PCM_16" and info.samplerate == 22050 and info.frames == 4
    data, _ = sf.read(out)
    assert data.max() <= 1.0 and data.min() >= -1.0  # clipped, not wrapped

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_wav(out, np.zeros(10), 16000)
    assert sf.info(out).frames == 4
    assert [p.name for p in out.parent.iterdir()] == ["a.wav"]


def test_iter_data_dir_audio(data_dir: Path):
    items = list(iter_data_dir_audio(data_dir, sample_rate=8000))
    assert [u for u, _, _ in items] == DataDir.load(data_dir).utts
    assert all(sr == 8000 and w.shape == (1600,) for _, w, sr in items)


@pytest.mark.parametrize("piped", [False, True])
def test_iter_data_dir_audio_with_segments(tmp_path: Path, wav_path: str, piped: bool):
    full, _ = load_audio(wav_path)
    spec = f"sox {wav_path} -t wav - |" if piped else wav_path
    DataDir(
        wav_scp={"rec": spec},
        text={"a": "x", "b": "y"},
        utt2spk={"a": "s", "b": "s"},
        segments={"a": ("rec", 0.0, 0.1), "b": ("rec", 0.1, -1)},
    ).write(tmp_path / "seg")
    got = {u: w for u, w, _ in iter_data_dir_audio(tmp_path / "seg")}
    np.testing.assert_allclose(got["a"], full[:1600], atol=1e-4)
    np.testing.assert_allclose(got["b"], full[1600:], atol=1e-4)
    assert utt_durations(tmp_path / "seg") == pytest.approx({"a": 0.1, "b": 0.1})


def test_utt_durations(data_dir: Path):
    assert utt_durations(data_dir) == pytest.approx({u: 0.2 for u in DataDir.load(data_dir).utts})
    (data_dir / "utt2dur").unlink()  # falls back to the audio headers
    assert utt_durations(data_dir)["spk2-utt2"] == pytest.approx(0.2)


def test_wav_data_shortfall_and_channel_cancellation(tmp_path: Path):
    from ttsrl.data.audio import channel_cancellation_db, wav_data_shortfall

    full = tmp_path / "full.wav"
    write_wav(full, np.zeros(1000), 16000)
    assert wav_data_shortfall(str(full)) is None
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:-500])  # 2000 bytes of data declared, 1500 left
    assert wav_data_shortfall(str(cut)) == (2000, 1500)
    streamed = bytearray(full.read_bytes())
    streamed[40:44] = b"\xff\xff\xff\xff"  # a streamed header (size unknown): not a truncation
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert wav_data_shortfall(str(tmp_path / "streamed.wav")) is None
    assert wav_data_shortfall(f"cat {cut} |") is None  # pipes are decoded, not measured
    x = 0.3 * np.sin(np.arange(4000) / 7.0)
    write_wav(tmp_path / "anti.wav", np.stack([x, -x], axis=1), 16000)
    assert channel_cancellation_db(str(tmp_path / "anti.wav")) > 40
    write_wav(tmp_path / "st.wav", np.stack([x, 0.2 * x], axis=1), 16000)
    assert channel_cancellation_db(str(tmp_path / "st.wav")) is None
    write_wav(tmp_path / "quiet.wav", np.zeros((4000, 2)), 16000)
    assert channel_cancellation_db(str(tmp_path / "quiet.wav")) is None  # silence, not cancellation
