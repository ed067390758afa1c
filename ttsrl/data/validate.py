"""Validation of Kaldi data directories (the checks of Kaldi's validate_data_dir.sh and more).

:func:`validate_data_dir` returns every problem found, each naming the file and line or
the utterance, so one run shows everything to fix. It checks:

- required files exist (``wav.scp``, ``text``, ``utt2spk`` by default);
- every file: UTF-8, one ``<id> <value>`` per line, no duplicate ids, sorted in C order,
  no empty values, no Windows line endings; ``text`` has no empty transcript and no
  control characters;
- ids agree across files: ``utt2spk`` is the master list (``text`` when utt2spk is
  absent); every other utterance-keyed file (text, wav.scp or segments, labels,
  prompt.scp, prompt_text, feats.scp) must have exactly those ids;
- ``utt2spk`` has one speaker id per line; ``spk2utt`` (when present) is its inverse;
- ``segments``: ``<utt> <rec> <start> <end>`` with ``0 <= start < end`` (or ``end == -1``)
  and a recording that is in wav.scp and long enough;
- label values (:data:`LABEL_VALUES`):

  ==============  ===========================================================
  utt2gender      ``m`` or ``f``
  utt2dur         a positive number of seconds
  utt2num_frames  a positive integer
  utt2age         a number in [0, 130] or one of :data:`AGE_CLASSES`
  utt2quality     a finite number (e.g. a MOS) or one of :data:`QUALITY_CLASSES`
  utt2lang        a language code: ``en``, ``zh``, ``cmn``, ``en-us``, ``pt_BR`` ...
  utt2emo         one token of letters, digits, ``_`` or ``-`` (``neutral``, ``happy``)
  other utt2*     any non-empty value
  ==============  ===========================================================

- audio (unless ``check_audio=False``): every entry exists, decodes (pipes are run),
  is not empty and has ``sample_rate`` (skip the rate check with ``sample_rate=None``).

Speaker ids that do not prefix utterance ids (so that sorting by utterance does not
group speakers) give a logged warning, not a problem: this toolkit derives spk2utt
itself, but Kaldi binaries would need the order fixed.

Usage::

    from ttsrl.data.validate import validate_data_dir

    problems = validate_data_dir("data/train", sample_rate=16000)
    for p in problems:
        print(p)
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

from ttsrl.data.datadir import (
    EXTRA_UTT_FILES,
    REQUIRED_FILES,
    KVLine,
    label_files_in,
    parse_segment,
    scan_kv,
    sort_key,
    summarize_ids,
)

logger = logging.getLogger(__name__)

AGE_CLASSES: tuple[str, ...] = ("child", "teen", "young", "adult", "middle", "senior")
QUALITY_CLASSES: tuple[str, ...] = (
    "bad", "poor", "fair", "good", "excellent", "low", "medium", "high", "clean", "noisy",
)  # fmt: skip
_LANG_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SEGMENT_SLACK = 0.05  # seconds a segment may run past the end of its recording (rounding)
_LIST_LIMIT = 5  # ids listed in a message before it is summarized


def _number(value: str) -> float | None:
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _check_gender(v: str) -> str | None:
    return None if v in ("m", "f") else "expected m or f"


def _check_dur(v: str) -> str | None:
    x = _number(v)
    return None if x is not None and x > 0 else "expected a positive number of seconds"


def _check_num_frames(v: str) -> str | None:
    return None if v.isdigit() and int(v) > 0 else "expected a positive integer"


def _check_age(v: str) -> str | None:
    x = _number(v)
    if (x is not None and 0 <= x <= 130) or v in AGE_CLASSES:
        return None
    return f"expected a number in [0, 130] or one of {', '.join(AGE_CLASSES)}"


def _check_quality(v: str) -> str | None:
    if _number(v) is not None or v in QUALITY_CLASSES:
        return None
    return f"expected a number or one of {', '.join(QUALITY_CLASSES)}"


def _check_lang(v: str) -> str | None:
    return None if _LANG_RE.match(v) else "expected a language code such as en, zh, en-us"


def _check_token(v: str) -> str | None:
    return None if _TOKEN_RE.match(v) else "expected one token of letters, digits, _ or -"


#: Value checks of known label files: a function returning an explanation, or None if valid.
LABEL_VALUES: dict[str, Callable[[str], str | None]] = {
    "utt2gender": _check_gender,
    "utt2dur": _check_dur,
    "utt2num_frames": _check_num_frames,
    "utt2age": _check_age,
    "utt2quality": _check_quality,
    "utt2lang": _check_lang,
    "utt2emo": _check_token,
}


class _Scanned:
    """A file's lines (first occurrence of each id) and line numbers."""

    def __init__(self, lines: list[KVLine]):
        self.lines = lines
        self.first: dict[str, KVLine] = {}
        for line in lines:
            self.first.setdefault(line.key, line)

    def keys(self) -> set[str]:
        return set(self.first)


def _scan(path: str, problems: list[str], allow_empty: bool = False) -> _Scanned:
    lines, found = scan_kv(path, allow_empty_value=allow_empty)
    problems.extend(str(p) for p in found)
    return _Scanned(lines)


def _compare_ids(
    master_name: str, master: set[str], name: str, path: str, scanned: _Scanned, problems: list[str]
) -> None:
    """Report ids of ``master`` missing from a file and ids of the file not in ``master``."""
    missing = sorted(master - scanned.keys(), key=sort_key)
    if missing:
        problems.append(f"{path}: lacks {len(missing)} utterance(s) of {master_name}: {summarize_ids(missing)}")
    extra = sorted(scanned.keys() - master, key=sort_key)
    if len(extra) > _LIST_LIMIT:
        problems.append(f"{path}: {len(extra)} id(s) not in {master_name}: {summarize_ids(extra)}")
    else:
        for key in extra:
            problems.append(f"{path}:{scanned.first[key].lineno}: '{key}' is not in {master_name}")


def _check_text(path: str, scanned: _Scanned, problems: list[str]) -> None:
    for line in scanned.lines:
        if not line.value:
            problems.append(f"{path}:{line.lineno}: empty text for '{line.key}'")
            continue
        bad = [c for c in line.value if unicodedata.category(c) == "Cc" and c != "\t"]
        if bad:
            problems.append(
                f"{path}:{line.lineno}: control character U+{ord(bad[0]):04X} in the text of '{line.key}'"
            )


def _check_spk2utt(path: str, scanned: _Scanned, utt2spk: _Scanned, problems: list[str]) -> None:
    expected: dict[str, set[str]] = {}
    for line in utt2spk.first.values():
        expected.setdefault(line.value, set()).add(line.key)
    seen_utt: dict[str, str] = {}
    for line in scanned.first.values():
        spk, utts = line.key, line.value.split()
        for utt in utts:
            if utt in seen_utt:
                problems.append(f"{path}:{line.lineno}: '{utt}' is listed for '{seen_utt[utt]}' and '{spk}'")
            seen_utt[utt] = spk
        if spk not in expected:
            problems.append(f"{path}:{line.lineno}: speaker '{spk}' is not in utt2spk")
            continue
        got = set(utts)
        if got != expected[spk]:
            diff = sorted(got ^ expected[spk], key=sort_key)
            problems.append(
                f"{path}:{line.lineno}: utterances of '{spk}' differ from utt2spk ({summarize_ids(diff)}); "
                "regenerate spk2utt with fix_data_dir"
            )
    missing = sorted(expected.keys() - scanned.keys(), key=sort_key)
    if missing:
        problems.append(f"{path}: lacks {len(missing)} speaker(s) of utt2spk: {summarize_ids(missing)}")


def _warn_speaker_order(path: str, utt2spk: _Scanned) -> None:
    order = sorted(utt2spk.first.values(), key=lambda line: sort_key(line.key))
    spks = [line.value for line in order]
    grouped = all(sort_key(a) <= sort_key(b) for a, b in zip(spks, spks[1:], strict=False))
    if not grouped:
        bad = [line.key for line in order if not line.key.startswith(line.value)]
        logger.warning(
            "%s: sorting by utterance does not group speakers (%d utterance id(s) without their speaker "
            "id as prefix, e.g. %s); fine for ttsrl, but Kaldi binaries expect speaker-prefixed ids",
            path,
            len(bad),
            summarize_ids(bad, 3),
        )


def _check_segments(
    path: str, scanned: _Scanned, recordings: set[str] | None, problems: list[str]
) -> dict[str, tuple[int, str, float, float]]:
    """Return {utt: (lineno, rec, start, end)} of the well-formed lines."""
    out: dict[str, tuple[int, str, float, float]] = {}
    for line in scanned.first.values():
        try:
            rec, start, end = parse_segment(line.value)
        except ValueError:
            problems.append(
                f"{path}:{line.lineno}: expected '<utt> <rec> <start> <end>' with numeric times, got "
                f"'{line.key} {line.value}'"
            )
            continue
        if start < 0:
            problems.append(f"{path}:{line.lineno}: '{line.key}' starts before 0 ({start})")
        elif end != -1 and end <= start:
            problems.append(f"{path}:{line.lineno}: '{line.key}' end {end} <= start {start}")
        if recordings is not None and rec not in recordings:
            problems.append(f"{path}:{line.lineno}: '{line.key}' references recording '{rec}' not in wav.scp")
            continue
        out[line.key] = (line.lineno, rec, start, end)
    return out


def _check_labels(path: str, name: str, scanned: _Scanned, problems: list[str]) -> None:
    check = LABEL_VALUES.get(name)
    if check is None:
        return
    bad = []
    for line in scanned.first.values():
        why = check(line.value)
        if why is not None:
            bad.append(f"{path}:{line.lineno}: invalid value '{line.value}' for '{line.key}' ({why})")
    problems.extend(bad)


def _check_audio(
    wav_path: str,
    wav: _Scanned,
    keys: Iterable[str],
    sample_rate: int | None,
    segments: dict[str, tuple[int, str, float, float]] | None,
    seg_path: str,
    problems: list[str],
) -> None:
    from tqdm import tqdm  # audio libraries load only when audio is checked

    from ttsrl.data.audio import AudioError, audio_info

    keys = [k for k in sorted(keys, key=sort_key) if k in wav.first]
    durations: dict[str, float] = {}
    what = "recording" if segments is not None else "utterance"
    for key in tqdm(keys, desc="checking audio", unit=what[:3], disable=len(keys) < 200, leave=False):
        line = wav.first[key]
        where = f"{wav_path}:{line.lineno}: {what} '{key}'"
        try:
            info = audio_info(line.value)
        except AudioError as e:
            problems.append(f"{where}: {e}")
            continue
        if info.frames == 0:
            problems.append(f"{where}: zero-length audio ({line.value})")
            continue
        if sample_rate is not None and info.sample_rate != sample_rate:
            problems.append(f"{where}: sample rate {info.sample_rate} Hz, expected {sample_rate} Hz")
        durations[key] = info.duration
    for utt, (lineno, rec, _start, end) in (segments or {}).items():
        if rec in durations and end != -1 and end > durations[rec] + _SEGMENT_SLACK:
            problems.append(
                f"{seg_path}:{lineno}: '{utt}' ends at {end} s, after the end of recording '{rec}' "
                f"({durations[rec]:.3f} s)"
            )


def validate_data_dir(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    check_audio: bool = True,
    required: Sequence[str] = REQUIRED_FILES,
) -> list[str]:
    """Check a data directory; returns the problems found (empty when valid)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return [f"{path}: not a directory"]
    problems: list[str] = []

    def fp(name: str) -> str:
        return os.path.join(path, name)

    for name in required:
        if not os.path.isfile(fp(name)):
            problems.append(f"{fp(name)}: missing (required)")

    scanned: dict[str, _Scanned] = {}
    utt_files = ["text", "utt2spk", *label_files_in(path), *EXTRA_UTT_FILES]
    for name in ["wav.scp", "segments", "spk2utt", *utt_files]:
        if os.path.isfile(fp(name)):
            scanned[name] = _scan(fp(name), problems, allow_empty=name == "text")

    if "text" in scanned:
        _check_text(fp("text"), scanned["text"], problems)

    master_name = next((n for n in ("utt2spk", "text", "segments", "wav.scp") if n in scanned), None)
    if master_name is None:
        return problems
    master = scanned[master_name].keys()

    # utterance-keyed files against the master list
    has_segments = "segments" in scanned
    keyed = [n for n in utt_files if n in scanned] + ["segments" if has_segments else "wav.scp"]
    for name in keyed:
        if name != master_name and name in scanned:
            _compare_ids(master_name, master, name, fp(name), scanned[name], problems)

    if "utt2spk" in scanned:
        for line in scanned["utt2spk"].first.values():
            if len(line.value.split()) != 1:
                problems.append(f"{fp('utt2spk')}:{line.lineno}: expected '<utt> <spk>', got '{line.key} {line.value}'")
        _warn_speaker_order(fp("utt2spk"), scanned["utt2spk"])
        if "spk2utt" in scanned:
            _check_spk2utt(fp("spk2utt"), scanned["spk2utt"], scanned["utt2spk"], problems)

    segments = None
    if has_segments:
        recordings = scanned["wav.scp"].keys() if "wav.scp" in scanned else None
        segments = _check_segments(fp("segments"), scanned["segments"], recordings, problems)

    for name in label_files_in(path):
        _check_labels(fp(name), name, scanned[name], problems)

    if check_audio and "wav.scp" in scanned:
        if segments is not None:
            keys: Iterable[str] = {rec for _, rec, _, _ in segments.values()}
        else:
            keys = master & scanned["wav.scp"].keys()
        _check_audio(fp("wav.scp"), scanned["wav.scp"], keys, sample_rate, segments, fp("segments"), problems)
    return problems
