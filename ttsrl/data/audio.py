"""Audio I/O for data directories: wav.scp entries (paths or pipes), segments, resampling.

A wav.scp value ("spec") is either a file path readable by soundfile (wav, flac, ogg ...)
or a shell command ending in ``|`` that writes a wav file to stdout, e.g.
``sox in.flac -t wav -r 16000 - |``. Commands run with ``bash -c`` under ``pipefail``; a
failing command raises :class:`AudioError` with the command and the end of its stderr.

Audio is returned as float32 mono in [-1, 1]: multi-channel audio is down-mixed by
averaging the channels (what ``librosa.load(mono=True)`` and ``sox remix -`` do). Channels
that cancel in that average (opposite phase: the mix is :data:`CANCEL_DB` dB or more below
the loudest channel) give a warning, once per file, and fail validation
(:func:`channel_cancellation_db`); a WAV file cut short of the data its header declares
(:func:`wav_data_shortfall`) fails validation too, as soundfile reads it without complaint.

Usage::

    from ttsrl.data.audio import audio_info, iter_data_dir_audio, load_audio, write_wav

    wav, sr = load_audio("a.wav", sample_rate=16000)                 # (T,) float32
    wav, sr = load_audio("sox a.flac -t wav - |", segment=(0.5, 1.5))
    audio_info("a.wav")                                              # AudioInfo(16000, 3200, 1)
    for utt, wav, sr in iter_data_dir_audio("data/train", sample_rate=16000):
        ...
    write_wav("out/a.wav", wav, sr)                                  # 16-bit PCM, atomic
"""

from __future__ import annotations

import io
import logging
import os
import struct
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from ttsrl.data.datadir import DataDir, DataDirError
from ttsrl.utils.fileio import atomic_path

logger = logging.getLogger(__name__)

_STDERR_TAIL = 800  # characters of a failing command's stderr kept in the message
CANCEL_DB = 20.0  # the mono mix this far below the loudest channel: the channels cancel
_SILENCE_RMS = 1e-4  # channels quieter than this are silence, not cancellation
_warned_cancel: set[str] = set()


class AudioError(DataDirError):
    """Audio could not be read (missing file, failing pipe, undecodable data, bad segment)."""


@dataclass(frozen=True)
class AudioInfo:
    """Sample rate, number of frames (samples per channel) and channels of an audio entry."""

    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def is_pipe(spec: str) -> bool:
    """True when a wav.scp value is a command (``... |``)."""
    return spec.rstrip().endswith("|")


def run_pipe(spec: str) -> bytes:
    """Run the command of a ``cmd |`` spec and return its stdout; raises AudioError."""
    cmd = spec.rstrip()[:-1].strip()
    try:
        proc = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, check=False)
    except OSError as e:  # bash itself missing
        raise AudioError(f"cannot run command '{cmd}': {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise AudioError(f"command failed with exit code {proc.returncode}: '{cmd}'" + (f"; stderr: {err}" if err else ""))
    if not proc.stdout:
        raise AudioError(f"command wrote no audio to stdout: '{cmd}'")
    return proc.stdout


def _check_path(spec: str) -> None:
    if not os.path.exists(spec):
        raise AudioError(f"audio file not found: {spec}")
    if not os.path.isfile(spec):
        raise AudioError(f"audio path is not a file: {spec}")


def _cancellation(data: np.ndarray) -> float | None:
    """dB by which the channel average of ``data`` (T, C) is below its loudest channel, when at
    least :data:`CANCEL_DB` (the channels cancel); None otherwise (or for mono / silence)."""
    if data.ndim != 2 or data.shape[1] < 2 or data.shape[0] == 0:
        return None
    loudest = float(np.sqrt(np.mean(np.square(data, dtype=np.float64), axis=0)).max())
    if loudest < _SILENCE_RMS:
        return None
    mono = float(np.sqrt(np.mean(np.square(data.mean(axis=1), dtype=np.float64))))
    loss = 20.0 * np.log10(loudest / max(mono, 1e-12))
    return float(loss) if loss >= CANCEL_DB else None


def _to_mono(data: np.ndarray, spec: str = "") -> np.ndarray:
    # data: (T, C) from soundfile with always_2d=True
    if data.shape[1] == 1:
        return data[:, 0]
    loss = _cancellation(data)
    if loss is not None and spec not in _warned_cancel:
        _warned_cancel.add(spec)
        logger.warning("%s: its %d channels cancel when averaged to mono (the mix is %.0f dB below the loudest "
                       "channel: opposite phase?); keep one channel, e.g. sox in.wav out.wav remix 1",
                       spec, data.shape[1], loss)  # fmt: skip
    return data.mean(axis=1)


def channel_cancellation_db(spec: str) -> float | None:
    """Decode a multi-channel wav.scp entry: the dB its mono mix loses to cancellation when that
    is at least :data:`CANCEL_DB` (opposite-phase channels average to near silence), else None."""
    try:
        if is_pipe(spec):
            data, _ = sf.read(io.BytesIO(run_pipe(spec)), dtype="float32", always_2d=True)
        else:
            _check_path(spec)
            data, _ = sf.read(spec, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioError(f"cannot decode audio from {spec}: {e}") from None
    return _cancellation(data)


def wav_data_shortfall(spec: str) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of the data chunk of a RIFF/WAVE file that holds less
    audio than its header declares (a truncated copy: soundfile then reads what is there and
    reports the shorter length); None for a complete file, a pipe, another format, or a
    streamed header (size 0 or 0xFFFFFFFF)."""
    if is_pipe(spec) or not os.path.isfile(spec):
        return None
    size = os.path.getsize(spec)
    with open(spec, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                present = size - (pos + 8)
                if chunk_size in (0, 0xFFFFFFFF) or present >= chunk_size:
                    return None
                return chunk_size, present
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _frame_range(segment: tuple[float, float] | None, sr: int, frames: int, spec: str) -> tuple[int, int]:
    if segment is None:
        return 0, frames
    start, end = segment
    begin = int(round(start * sr))
    stop = frames if end == -1 else min(frames, int(round(end * sr)))
    if start < 0 or (end != -1 and end <= start):
        raise AudioError(f"invalid segment ({start}, {end}) for {spec}")
    if begin >= frames:
        raise AudioError(f"segment starts at {start:.3f} s, after the end of {spec} ({frames / sr:.3f} s)")
    return begin, stop


def load_audio(
    spec: str, sample_rate: int | None = None, segment: tuple[float, float] | None = None
) -> tuple[np.ndarray, int]:
    """Read a wav.scp entry as float32 mono; returns ``(wav (T,), sample_rate)``.

    Args:
        spec: a path or a ``cmd |`` pipe.
        sample_rate: resample (soxr, high quality) to this rate when it differs.
        segment: ``(start, end)`` in seconds to cut out (``end == -1``: to the end).
    """
    try:
        if is_pipe(spec):
            with sf.SoundFile(io.BytesIO(run_pipe(spec))) as f:
                sr = f.samplerate
                data = f.read(dtype="float32", always_2d=True)
            begin, stop = _frame_range(segment, sr, data.shape[0], spec)
            data = data[begin:stop]
        else:
            _check_path(spec)
            with sf.SoundFile(spec) as f:
                sr = f.samplerate
                begin, stop = _frame_range(segment, sr, f.frames, spec)
                if begin:
                    f.seek(begin)
                data = f.read(frames=stop - begin, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioError(f"cannot decode audio from {spec}: {e}") from None
    wav = np.ascontiguousarray(_to_mono(data, spec), dtype=np.float32)
    if sample_rate is not None and sample_rate != sr and wav.size:
        import soxr

        wav = soxr.resample(wav, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
        sr = sample_rate
    return wav, int(sr)


def audio_info(spec: str) -> AudioInfo:
    """Sample rate, frames and channels: from the header for paths, by decoding for pipes."""
    try:
        if is_pipe(spec):
            with sf.SoundFile(io.BytesIO(run_pipe(spec))) as f:
                # a streamed wav header may carry a bogus length, so count what decodes
                frames = f.read(dtype="float32", always_2d=True).shape[0]
                return AudioInfo(f.samplerate, frames, f.channels)
        _check_path(spec)
        info = sf.info(spec)
    except (sf.SoundFileError, RuntimeError) as e:
        raise AudioError(f"cannot decode audio from {spec}: {e}") from None
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int) -> None:
    """Write ``wav`` ((T,) or (T, C) float in [-1, 1]) as 16-bit PCM wav, atomically."""
    data = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, data, int(sample_rate), subtype="PCM_16", format="WAV")


def _as_datadir(datadir: DataDir | str | os.PathLike) -> DataDir:
    return datadir if isinstance(datadir, DataDir) else DataDir.load(datadir)


def iter_data_dir_audio(
    datadir: DataDir | str | os.PathLike, sample_rate: int | None = None, utts: Iterable[str] | None = None
) -> Iterator[tuple[str, np.ndarray, int]]:
    """Yield ``(utt, wav, sr)`` for every utterance (or ``utts``), honouring ``segments``.

    With segments, a piped recording is decoded once for all its consecutive segments;
    a file recording is read segment by segment (soundfile seeks).
    """
    d = _as_datadir(datadir)
    cached: tuple[str, np.ndarray, int] | None = None  # (pipe spec, wav, sr)
    for utt in d.utts if utts is None else utts:
        spec, segment = d.audio_spec(utt)
        if segment is not None and is_pipe(spec):
            if cached is None or cached[0] != spec:
                full, sr = load_audio(spec)
                cached = (spec, full, sr)
            _, full, sr = cached
            begin, stop = _frame_range(segment, sr, full.shape[0], spec)
            wav = full[begin:stop]
            if sample_rate is not None and sample_rate != sr and wav.size:
                import soxr

                wav = soxr.resample(wav, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
                sr = sample_rate
            yield utt, wav, sr
        else:
            wav, sr = load_audio(spec, sample_rate=sample_rate, segment=segment)
            yield utt, wav, sr


def utt_durations(datadir: DataDir | str | os.PathLike) -> dict[str, float]:
    """Duration in seconds of every utterance: from utt2dur when it covers all of them,
    else from segments (end - start), else from the audio headers (pipes are decoded)."""
    d = _as_datadir(datadir)
    utt2dur = d.labels.get("utt2dur", {})
    if utt2dur and all(u in utt2dur for u in d.utts):
        try:
            return {u: float(utt2dur[u]) for u in d.utts}
        except ValueError as e:
            raise DataDirError(f"utt2dur: {e}") from None
    out: dict[str, float] = {}
    rec_dur: dict[str, float] = {}
    for utt in d.utts:
        spec, segment = d.audio_spec(utt)
        if segment is not None and segment[1] != -1:
            out[utt] = segment[1] - segment[0]
            continue
        if spec not in rec_dur:
            rec_dur[spec] = audio_info(spec).duration
        out[utt] = rec_dur[spec] - (segment[0] if segment is not None else 0.0)
    return out
