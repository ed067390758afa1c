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
  is not empty and has ``sample_rate`` (skip the rate check with ``sample_rate=None``); a WAV
  file whose data chunk is shorter than its header says (a truncated copy) is reported, and
  so is a ``utt2dur`` that disagrees with the audio by more than :data:`DUR_TOLERANCE`
  seconds (without ``segments``); so is multi-channel audio whose channels cancel when
  averaged to mono (opposite phase).

With ``kaldi_strict=True`` (the default; ``--kaldi_strict false`` on the command line) the
directory must also pass Kaldi's ``utils/validate_data_dir.sh`` (and ``validate_text.pl``), so
that Kaldi and ESPnet tools can read it:

- ``spk2utt`` exists (with ``utt2spk``), and neither it, ``utt2spk`` nor ``text`` is empty;
- utt2spk sorted by utterance is also sorted by speaker (``sort -k2 -C``): speaker ids must
  prefix the utterance ids, e.g. ``spk1-utt1`` (without strict mode: a logged warning);
- every ``spk2utt`` line lists its utterances in sorted order (Kaldi compares
  ``spk2utt_to_utt2spk.pl spk2utt`` with utt2spk line by line);
- every file ends with a newline;
- ``text`` has no Unicode whitespace but the ASCII space and tab (no-break space U+00A0,
  ideographic space U+3000 ...), no unassigned code point (``[:print:]``) and not the words
  ``<s>``, ``</s>`` or ``#0``;
- ``wav.scp`` has no path starting with ``~``; with ``segments``, every recording of wav.scp is
  used by a segment.

Kaldi rules not applied: ``feats.scp`` is not required (ttsrl computes its own features, as
Kaldi's ``--no-feats``); a ``segments`` end of ``-1`` ("to the end", which Kaldi's
``extract-segments`` reads) is accepted although validate_data_dir.sh rejects it; files
ttsrl does not read (``spk2gender``, ``cmvn.scp``, ``reco2dur`` ...) are not checked.

Data dirs written by ttsrl (:meth:`ttsrl.data.datadir.DataDir.write`, ``fix_data_dir``,
``ttsrl.data.corpus.write_data_dir``) pass these rules when their utterance ids are
speaker-prefixed: they are sorted, newline-terminated, carry spk2utt and replace the Unicode
spaces of transcripts by ASCII spaces. ``fix_data_dir`` does not rename utterance ids that do
not start with their speaker id (the corpus preparation chooses the ids): it warns instead.

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
    disallowed_whitespace,
    label_files_in,
    parse_segment,
    scan_kv,
    sort_key,
    summarize_ids,
    utt2spk_line_problem,
)

logger = logging.getLogger(__name__)

AGE_CLASSES: tuple[str, ...] = ("child", "teen", "young", "adult", "middle", "senior")
QUALITY_CLASSES: tuple[str, ...] = (
    "bad", "poor", "fair", "good", "excellent", "low", "medium", "high", "clean", "noisy",
)  # fmt: skip
_LANG_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SEGMENT_SLACK = 0.05  # seconds a segment may run past the end of its recording (rounding)
DUR_TOLERANCE = 0.05  # seconds utt2dur may differ from the audio (rounding of the written value)
_ILLEGAL_WORD_RE = re.compile(r"(?<!\w)(<s>|</s>|#0)(?!\w)")  # Kaldi's `grep -w` on text
_TILDE_RE = re.compile(r"^~")
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


def _scan(path: str, problems: list[str], allow_empty: bool = False, strict: bool = True) -> _Scanned:
    lines, found = scan_kv(path, allow_empty_value=allow_empty)
    problems.extend(str(p) for p in found if strict or p.kind != "no-final-newline")
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


def _check_text(path: str, scanned: _Scanned, problems: list[str], strict: bool) -> None:
    for line in scanned.lines:
        if not line.value:
            problems.append(f"{path}:{line.lineno}: empty text for '{line.key}'")
            continue
        bad = [c for c in line.value if unicodedata.category(c) == "Cc" and c != "\t"]
        if bad:
            problems.append(
                f"{path}:{line.lineno}: control character U+{ord(bad[0]):04X} in the text of '{line.key}'"
            )
        if not strict:
            continue
        spaces = disallowed_whitespace(line.value)
        if spaces:
            problems.append(
                f"{path}:{line.lineno}: whitespace U+{ord(spaces[0]):04X} ({unicodedata.name(spaces[0], '?')}) in the "
                f"text of '{line.key}': Kaldi allows only the ASCII space and tab (fix_data_dir replaces it)"
            )
        unassigned = [c for c in line.value if unicodedata.category(c) == "Cn"]
        if unassigned:
            problems.append(f"{path}:{line.lineno}: unassigned code point U+{ord(unassigned[0]):04X} in the text of "
                            f"'{line.key}' (not printable for Kaldi)")  # fmt: skip
        m = _ILLEGAL_WORD_RE.search(line.value)
        if m:
            problems.append(f"{path}:{line.lineno}: the text of '{line.key}' holds '{m.group(1)}', a symbol Kaldi "
                            "reserves (<s>, </s>, #0)")  # fmt: skip


def _check_spk2utt(path: str, scanned: _Scanned, utt2spk: _Scanned, problems: list[str], strict: bool) -> None:
    expected: dict[str, set[str]] = {}
    malformed: set[str] = set()  # utt2spk lines reported once, as such
    for line in utt2spk.first.values():
        if utt2spk_line_problem(line) is None:
            expected.setdefault(line.value, set()).add(line.key)
        else:
            malformed.add(line.key)
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
        got = set(utts) - malformed
        if strict and got == expected[spk] and utts != sorted(utts, key=sort_key):
            i = next(i for i, (a, b) in enumerate(zip(utts, utts[1:], strict=False)) if sort_key(a) > sort_key(b))
            problems.append(
                f"{path}:{line.lineno}: the utterances of '{spk}' are not in sorted order ('{utts[i]}' before "
                f"'{utts[i + 1]}'); Kaldi expands spk2utt into utt2spk line by line (regenerate it with fix_data_dir)"
            )
        if got != expected[spk]:
            diff = sorted(got ^ expected[spk], key=sort_key)
            problems.append(
                f"{path}:{line.lineno}: utterances of '{spk}' differ from utt2spk ({summarize_ids(diff)}); "
                "regenerate spk2utt with fix_data_dir"
            )
    missing = sorted(expected.keys() - scanned.keys(), key=sort_key)
    if missing:
        problems.append(f"{path}: lacks {len(missing)} speaker(s) of utt2spk: {summarize_ids(missing)}")


def speaker_order_problem(utt2spk: dict[str, str]) -> str | None:
    """Why utterances sorted by id are not grouped by speaker (Kaldi's ``sort -k2 -C utt2spk``), or None."""
    order = sorted(utt2spk, key=sort_key)
    spks = [utt2spk[u] for u in order]
    if all(sort_key(a) <= sort_key(b) for a, b in zip(spks, spks[1:], strict=False)):
        return None
    bad = [u for u in order if not u.startswith(utt2spk[u])]
    return (
        f"sorting by utterance does not group speakers ({len(bad)} utterance id(s) without their speaker id as "
        f"prefix, e.g. {summarize_ids(bad, 3) or summarize_ids(order, 3)}); Kaldi's validate_data_dir.sh rejects "
        "this: make the speaker id followed by '-' the prefix of every utterance id (spk1-utt1)"
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
    utt2dur: _Scanned | None = None,
    utt2dur_path: str = "utt2dur",
) -> None:
    from tqdm import tqdm  # audio libraries load only when audio is checked

    from ttsrl.data.audio import AudioError, audio_info, channel_cancellation_db, wav_data_shortfall

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
        short = wav_data_shortfall(line.value)
        if short is not None:
            declared, present = short
            problems.append(f"{where}: truncated WAV: the header declares {declared} bytes of audio, the file holds "
                            f"{present} ({line.value})")  # fmt: skip
        if info.channels > 1:
            try:
                loss = channel_cancellation_db(line.value)
            except AudioError as e:
                problems.append(f"{where}: {e}")
                continue
            if loss is not None:
                problems.append(f"{where}: its {info.channels} channels cancel when averaged to mono (the mix is "
                                f"{loss:.0f} dB below the channels: opposite phase?); keep one channel, e.g. "
                                f"sox in.wav out.wav remix 1")  # fmt: skip
        durations[key] = info.duration
    for utt, (lineno, rec, _start, end) in (segments or {}).items():
        if rec in durations and end != -1 and end > durations[rec] + _SEGMENT_SLACK:
            problems.append(
                f"{seg_path}:{lineno}: '{utt}' ends at {end} s, after the end of recording '{rec}' "
                f"({durations[rec]:.3f} s)"
            )
    if utt2dur is not None and segments is None:  # segmented dirs: utt2dur is not compared
        for utt, line in utt2dur.first.items():
            if utt not in durations:
                continue
            actual = durations[utt]
            try:
                said = float(line.value)
            except ValueError:
                continue  # reported by the label check
            if abs(said - actual) > DUR_TOLERANCE:
                problems.append(f"{utt2dur_path}:{line.lineno}: '{utt}' lasts {said:g} s by utt2dur but {actual:.3f} s "
                                "by its audio (a changed or truncated file?); recompute utt2dur")  # fmt: skip


def validate_data_dir(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    check_audio: bool = True,
    required: Sequence[str] = REQUIRED_FILES,
    kaldi_strict: bool = True,
) -> list[str]:
    """Check a data directory; returns the problems found (empty when valid).

    ``kaldi_strict`` adds the rules of Kaldi's validate_data_dir.sh (module docstring).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        return [f"{path}: not a directory"]
    problems: list[str] = []
    strict = kaldi_strict

    def fp(name: str) -> str:
        return os.path.join(path, name)

    for name in required:
        if not os.path.isfile(fp(name)):
            problems.append(f"{fp(name)}: missing (required)")
    if strict and ("utt2spk" in required or os.path.isfile(fp("utt2spk"))) and not os.path.isfile(fp("spk2utt")):
        problems.append(f"{fp('spk2utt')}: missing (Kaldi requires it beside utt2spk; fix_data_dir or "
                        "utils/utt2spk_to_spk2utt.sh writes it)")  # fmt: skip

    scanned: dict[str, _Scanned] = {}
    utt_files = ["text", "utt2spk", *label_files_in(path), *EXTRA_UTT_FILES]
    for name in ["wav.scp", "segments", "spk2utt", *utt_files]:
        if os.path.isfile(fp(name)):
            scanned[name] = _scan(fp(name), problems, allow_empty=name == "text", strict=strict)
            if strict and name in ("utt2spk", "spk2utt", "text") and os.path.getsize(fp(name)) == 0:
                problems.append(f"{fp(name)}: empty file (Kaldi rejects it)")

    if "text" in scanned:
        _check_text(fp("text"), scanned["text"], problems, strict)
    if strict and "wav.scp" in scanned:
        for line in scanned["wav.scp"].first.values():
            if _TILDE_RE.match(line.value):
                problems.append(f"{fp('wav.scp')}:{line.lineno}: '{line.key}': a path starting with '~' (no shell "
                                "expands it when the file is opened; Kaldi rejects it)")  # fmt: skip

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
        good: dict[str, str] = {}
        for line in scanned["utt2spk"].first.values():
            why = utt2spk_line_problem(line)
            if why is None:
                good[line.key] = line.value
            else:
                problems.append(f"{fp('utt2spk')}:{line.lineno}: {why}")
        order = speaker_order_problem(good)
        if order and strict:
            problems.append(f"{fp('utt2spk')}: {order} (or validate with --kaldi_strict false)")
        elif order:
            logger.warning("%s: %s", fp("utt2spk"), order)
        if "spk2utt" in scanned:
            _check_spk2utt(fp("spk2utt"), scanned["spk2utt"], scanned["utt2spk"], problems, strict)

    segments = None
    if has_segments:
        recordings = scanned["wav.scp"].keys() if "wav.scp" in scanned else None
        segments = _check_segments(fp("segments"), scanned["segments"], recordings, problems)
        if strict and recordings is not None:
            used = {line.value.split()[0] for line in scanned["segments"].lines}
            unused = sorted(recordings - used, key=sort_key)
            if unused:
                problems.append(f"{fp('wav.scp')}: {len(unused)} recording(s) used by no segment: "
                                f"{summarize_ids(unused)} (Kaldi rejects them; fix_data_dir removes them)")  # fmt: skip

    for name in label_files_in(path):
        _check_labels(fp(name), name, scanned[name], problems)

    if check_audio and "wav.scp" in scanned:
        if segments is not None:
            keys: Iterable[str] = {rec for _, rec, _, _ in segments.values()}
        else:
            keys = master & scanned["wav.scp"].keys()
        _check_audio(fp("wav.scp"), scanned["wav.scp"], keys, sample_rate, segments, fp("segments"), problems,
                     scanned.get("utt2dur"), fp("utt2dur"))  # fmt: skip
    return problems
