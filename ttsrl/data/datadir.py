"""Kaldi data directories: reading, writing and an in-memory view.

A data directory holds one line per item in plain-text "key value" files, every file
sorted by key in byte order (what ``LC_ALL=C sort`` gives):

==============  =============================  ==========================================
file            line                           notes
==============  =============================  ==========================================
wav.scp         ``<utt> <path>``               or ``<utt> <command> |`` (a pipe that writes
                ``<utt> <cmd ...> |``          a wav to stdout); keyed by recording when
                                               ``segments`` exists
segments        ``<utt> <rec> <start> <end>``  seconds; ``end == -1`` means "to the end"
text            ``<utt> <transcript>``
utt2spk         ``<utt> <spk>``                the master list of utterances
spk2utt         ``<spk> <utt1> <utt2> ...``    always derived from utt2spk when written
utt2*           ``<utt> <label>``              labels, see :data:`LABEL_FILES`
prompt.scp      ``<utt> <wav path>``           zero-shot prompt audio (see ttsrl.data.seedtts)
prompt_text     ``<utt> <transcript>``         transcript of the prompt audio
feats.scp       ``<utt> <ark:offset>``         kaldiio arrays (see ttsrl.data.arrays)
==============  =============================  ==========================================

Usage::

    from ttsrl.data.datadir import DataDir, read_kv, write_kv

    d = DataDir.load("data/train")
    for utt in d.utts:
        print(utt, d.utt2spk[utt], d.text[utt], d.labels.get("utt2emo", {}).get(utt))
    d.subset(d.utts[:10]).write("data/train_10")

    text = read_kv("data/train/text")            # {"spk1-utt1": "hello world", ...}
    write_kv("data/train/text", text)            # sorted, atomic
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

#: Label files a data directory may carry (``<utt> <value>``); any other ``utt2*`` file
#: is loaded as a label too. Accepted values are listed in :mod:`ttsrl.data.validate`.
LABEL_FILES: tuple[str, ...] = (
    "utt2emo",
    "utt2gender",
    "utt2age",
    "utt2quality",
    "utt2lang",
    "utt2dur",
    "utt2num_frames",
)

#: Utterance-keyed files that are not labels but are kept consistent by every operation.
EXTRA_UTT_FILES: tuple[str, ...] = ("prompt.scp", "prompt_text", "feats.scp")

#: Files every complete data directory has.
REQUIRED_FILES: tuple[str, ...] = ("wav.scp", "text", "utt2spk")

#: Every file name the data layer reads and writes (besides ``utt2*`` labels).
KNOWN_FILES: tuple[str, ...] = ("wav.scp", "segments", "text", "utt2spk", "spk2utt", *EXTRA_UTT_FILES)


#: Problems of :func:`scan_kv` that readers accept (validation reports them).
LENIENT_KINDS: tuple[str, ...] = ("unsorted", "no-final-newline")

#: Files whose values are transcripts: written with :func:`kaldi_text`.
TEXT_FILES: tuple[str, ...] = ("text", "prompt_text")


class DataDirError(ValueError):
    """A data directory (or one of its files) is malformed; the message names file and line."""


def disallowed_whitespace(text: str) -> list[str]:
    """Whitespace characters Kaldi's ``utils/validate_text.pl`` rejects in a transcript (besides
    the control characters, reported as such): every Unicode space or separator other than the
    ASCII space, e.g. the no-break space U+00A0 and the ideographic space U+3000."""
    return [c for c in text if c.isspace() and c not in " \t\n" and unicodedata.category(c) != "Cc"]


def kaldi_text(text: str) -> str:
    """``text`` with every :func:`disallowed_whitespace` character replaced by an ASCII space
    (then stripped): what the data layer writes to ``text`` and ``prompt_text``, so that the
    transcripts pass Kaldi's validate_text.pl."""
    if text.isascii():
        return text
    return "".join(" " if c.isspace() and c not in "\t\n" and unicodedata.category(c) != "Cc" else c
                   for c in text).strip()  # fmt: skip


def utt2spk_line_problem(line: KVLine) -> str | None:
    """Why a parsed ``utt2spk`` line is malformed (more than two fields), or None."""
    n = len(line.value.split())
    if n == 1:
        return None
    return f"{n + 1} fields, expected 2 ('<utt> <spk>'): '{line.key} {line.value}'"


def sort_key(key: str) -> bytes:
    """Byte-order sort key, as ``LC_ALL=C sort`` orders Kaldi ids."""
    return key.encode("utf-8")


def sorted_ids(ids: Iterable[str]) -> list[str]:
    """Sort ids in C (byte) order."""
    return sorted(ids, key=sort_key)


def is_label_file(name: str) -> bool:
    """True for ``utt2*`` label files (``utt2spk`` is not a label)."""
    return name.startswith("utt2") and name != "utt2spk" and not name.startswith(".")


@dataclass(frozen=True)
class KVLine:
    """One parsed line: 1-based line number, key and value (whitespace-stripped)."""

    lineno: int
    key: str
    value: str


@dataclass(frozen=True)
class KVProblem:
    """One problem found while scanning a file.

    ``kind`` is one of ``"encoding"``, ``"empty-line"``, ``"leading-space"``,
    ``"empty-value"``, ``"carriage-return"``, ``"duplicate"``, ``"unsorted"``,
    ``"no-final-newline"`` (the last line does not end with ``\n``: Kaldi's
    validate_data_dir.sh rejects the file; readers accept it).
    """

    path: str
    lineno: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"


def scan_kv(path: str | os.PathLike, allow_empty_value: bool = False) -> tuple[list[KVLine], list[KVProblem]]:
    """Parse a "key value" file leniently: every line that parses, and every problem found.

    Lines with an encoding error, no key or (unless ``allow_empty_value``) no value are
    left out of the returned lines; duplicate keys are kept (the caller decides), and the
    first out-of-order key is reported once. Used by :func:`read_kv` (which raises on the
    first problem), by validation (which reports them all) and by ``fix_data_dir``.
    """
    path = str(path)
    lines: list[KVLine] = []
    problems: list[KVProblem] = []
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        return lines, problems
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    else:
        problems.append(KVProblem(path, len(raw_lines), "no-final-newline",
                                  "no newline at the end of the file (Kaldi's validate_data_dir.sh rejects it)"))
    seen: dict[str, int] = {}
    prev: str | None = None
    reported_unsorted = False
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(KVProblem(path, lineno, "encoding", f"not valid UTF-8 ({e.reason} at byte {e.start})"))
            continue
        if line.endswith("\r"):
            problems.append(
                KVProblem(path, lineno, "carriage-return", "line ends with a carriage return (Windows line ending)")
            )
            line = line.rstrip("\r")
        if not line.strip():
            problems.append(KVProblem(path, lineno, "empty-line", "empty line"))
            continue
        if line[0].isspace():
            problems.append(KVProblem(path, lineno, "leading-space", "line starts with whitespace (no id)"))
            continue
        parts = line.split(maxsplit=1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value and not allow_empty_value:
            problems.append(KVProblem(path, lineno, "empty-value", f"'{key}' has no value"))
            continue
        if key in seen:
            problems.append(
                KVProblem(path, lineno, "duplicate", f"duplicate id '{key}' (first on line {seen[key]})")
            )
        else:
            seen[key] = lineno
        if prev is not None and sort_key(key) < sort_key(prev) and not reported_unsorted:
            problems.append(
                KVProblem(
                    path,
                    lineno,
                    "unsorted",
                    f"not sorted: '{key}' comes after '{prev}' (sort with LC_ALL=C sort, or run fix_data_dir)",
                )
            )
            reported_unsorted = True
        prev = key
        lines.append(KVLine(lineno, key, value))
    return lines, problems


def read_kv(path: str | os.PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a "key value" file into an insertion-ordered dict.

    Raises :class:`DataDirError` naming ``file:line`` for a malformed line, a duplicate id,
    bytes that are not UTF-8, or an empty value (unless ``allow_empty_value``). The order
    is not checked here (see :func:`ttsrl.data.validate.validate_data_dir`).

    >>> read_kv("data/train/utt2spk")  # doctest: +SKIP
    {'spk1-a': 'spk1', 'spk1-b': 'spk1'}
    """
    lines, problems = scan_kv(path, allow_empty_value=allow_empty_value)
    for p in problems:
        if p.kind not in LENIENT_KINDS:
            raise DataDirError(str(p))
    return {line.key: line.value for line in lines}


def write_kv(path: str | os.PathLike, mapping: Mapping[str, str | Iterable[str]]) -> None:
    """Write ``mapping`` as "key value" lines sorted in C order, atomically.

    Values that are lists (``spk2utt``) are joined with spaces. The file is written to a
    temporary name in the same folder and renamed, so readers never see half a file.
    """
    out = []
    for key in sorted_ids(mapping):
        value = mapping[key]
        if not isinstance(value, str):
            value = " ".join(value)
        if not key or any(c.isspace() for c in key):
            raise DataDirError(f"{path}: invalid id {key!r} (empty or contains whitespace)")
        if "\n" in value or "\r" in value:
            raise DataDirError(f"{path}: the value of '{key}' contains a line break")
        out.append(f"{key} {value}\n")
    atomic_write_text(path, "".join(out))


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Group utterances by speaker; speakers and their utterances in C order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted_ids(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted_ids(spk2utt)}


def spk2utt_to_utt2spk(spk2utt: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Invert ``spk2utt``; raises :class:`DataDirError` if an utterance has two speakers."""
    utt2spk: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts:
            if utt in utt2spk and utt2spk[utt] != spk:
                raise DataDirError(f"spk2utt: utterance '{utt}' listed for '{utt2spk[utt]}' and '{spk}'")
            utt2spk[utt] = spk
    return utt2spk


Segment = tuple[str, float, float]  # (recording id, start seconds, end seconds or -1)


def parse_segment(value: str) -> Segment:
    """Parse the value part of a ``segments`` line (``rec start end``); raises ValueError."""
    parts = value.split()
    if len(parts) != 3:
        raise ValueError(f"expected '<rec> <start> <end>', got {value!r}")
    return parts[0], float(parts[1]), float(parts[2])


def _fmt_time(t: float) -> str:
    return "-1" if t == -1 else (f"{t:.6f}".rstrip("0").rstrip(".") or "0")


def format_segment(seg: Segment) -> str:
    """Inverse of :func:`parse_segment` (times without trailing zeros)."""
    rec, start, end = seg
    return f"{rec} {_fmt_time(start)} {_fmt_time(end)}"


@dataclass
class DataDir:
    """An in-memory Kaldi data directory.

    Every mapping is keyed by utterance id except ``wav_scp`` when ``segments`` is set
    (then it is keyed by recording). A missing file is an empty mapping (``segments`` is
    ``None``). ``spk2utt`` is always derived from ``utt2spk``.

    Usage::

        d = DataDir.load("data/train")
        d.utts                  # sorted utterance ids
        d.audio_spec(d.utts[0]) # ("sox a.wav -t wav - |", None) or ("rec.wav", (1.0, 2.5))
        d.subset(["u1", "u2"]).write("data/two")
    """

    wav_scp: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    segments: dict[str, Segment] | None = None
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    path: str | None = None

    # -- loading --------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> DataDir:
        """Load every known file present in ``path``; raises DataDirError on a bad line."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise DataDirError(f"{path}: not a directory")

        def opt(name: str, allow_empty: bool = False) -> dict[str, str]:
            p = os.path.join(path, name)
            return read_kv(p, allow_empty_value=allow_empty) if os.path.isfile(p) else {}

        segments = None
        seg_path = os.path.join(path, "segments")
        if os.path.isfile(seg_path):
            segments = {}
            for line in _lines_or_raise(seg_path):
                try:
                    segments[line.key] = parse_segment(line.value)
                except ValueError as e:
                    raise DataDirError(f"{seg_path}:{line.lineno}: {e}") from None
        utt2spk_path = os.path.join(path, "utt2spk")
        if os.path.isfile(utt2spk_path):
            for line in _lines_or_raise(utt2spk_path):
                why = utt2spk_line_problem(line)
                if why is not None:
                    raise DataDirError(f"{utt2spk_path}:{line.lineno}: {why}")
        labels = {name: opt(name) for name in label_files_in(path)}
        extra = {name: opt(name) for name in EXTRA_UTT_FILES if os.path.isfile(os.path.join(path, name))}
        d = cls(
            wav_scp=opt("wav.scp"),
            text=opt("text", allow_empty=True),
            utt2spk=opt("utt2spk"),
            segments=segments,
            labels=labels,
            extra=extra,
            path=path,
        )
        ignored = unknown_files_in(path)
        if ignored:
            logger.debug("%s: files not handled by the data layer: %s", path, " ".join(ignored))
        return d

    # -- views ----------------------------------------------------------------------
    @property
    def utts(self) -> list[str]:
        """Sorted utterance ids: from utt2spk, else text, else segments, else wav.scp."""
        for m in (self.utt2spk, self.text, self.segments, self.wav_scp):
            if m:
                return sorted_ids(m)
        return []

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        return utt2spk_to_spk2utt(self.utt2spk)

    @property
    def spks(self) -> list[str]:
        return list(self.spk2utt)

    def utt_maps(self) -> dict[str, dict[str, str]]:
        """Every utterance-keyed string mapping present, by file name (not wav.scp/segments)."""
        maps: dict[str, dict[str, str]] = {}
        if self.text:
            maps["text"] = self.text
        if self.utt2spk:
            maps["utt2spk"] = self.utt2spk
        maps.update(self.labels)
        maps.update(self.extra)
        return maps

    def audio_spec(self, utt: str) -> tuple[str, tuple[float, float] | None]:
        """The wav.scp entry that holds ``utt`` and the (start, end) to cut, if segmented."""
        if self.segments is not None:
            rec, start, end = self.segments[utt]
            return self.wav_scp[rec], (start, end)
        return self.wav_scp[utt], None

    # -- derived directories --------------------------------------------------------
    def subset(self, utts: Iterable[str]) -> DataDir:
        """A new DataDir with only ``utts`` (ids absent from a file are simply absent).

        wav.scp keeps the recordings those utterances use when segmented.
        """
        keep = set(utts)

        def f(m: Mapping[str, str]) -> dict[str, str]:
            return {k: v for k, v in m.items() if k in keep}

        segments = None
        if self.segments is not None:
            segments = {k: v for k, v in self.segments.items() if k in keep}
            recs = {seg[0] for seg in segments.values()}
            wav_scp = {k: v for k, v in self.wav_scp.items() if k in recs}
        else:
            wav_scp = f(self.wav_scp)
        return DataDir(
            wav_scp=wav_scp,
            text=f(self.text),
            utt2spk=f(self.utt2spk),
            segments=segments,
            labels={k: f(v) for k, v in self.labels.items()},
            extra={k: f(v) for k, v in self.extra.items()},
        )

    # -- writing --------------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> None:
        """Write every non-empty mapping (sorted, atomically) and ``spk2utt`` to ``path``.

        Transcripts (``text``, ``prompt_text``) go through :func:`kaldi_text`, so what is
        written passes Kaldi's validate_data_dir.sh when the ids are speaker-prefixed.

        Files the data layer manages that this DataDir does not have (an old ``segments``,
        a label file, ``spk2utt`` without utt2spk) are removed so the directory stays
        consistent; other files are left alone.
        """
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        files: dict[str, Mapping[str, str | Iterable[str]]] = {}
        if self.wav_scp:
            files["wav.scp"] = self.wav_scp
        if self.segments is not None:
            files["segments"] = {k: format_segment(v) for k, v in self.segments.items()}
        files.update({k: v for k, v in self.utt_maps().items()})
        if self.utt2spk:
            files["spk2utt"] = self.spk2utt
        for name in (*KNOWN_FILES, *label_files_in(path)):
            if name not in files and os.path.isfile(os.path.join(path, name)):
                os.unlink(os.path.join(path, name))
        for name in TEXT_FILES:
            if name in files:
                files[name] = {k: kaldi_text(v) for k, v in files[name].items()}  # type: ignore[union-attr]
        for name, mapping in files.items():
            write_kv(os.path.join(path, name), mapping)
        self.path = path


def _lines_or_raise(path: str) -> list[KVLine]:
    lines, problems = scan_kv(path)
    for p in problems:
        if p.kind not in LENIENT_KINDS:
            raise DataDirError(str(p))
    return lines


def label_files_in(path: str | os.PathLike) -> list[str]:
    """Names of ``utt2*`` label files present in ``path`` (sorted)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_label_file(n) and os.path.isfile(os.path.join(path, n)))


def unknown_files_in(path: str | os.PathLike) -> list[str]:
    """Regular files in ``path`` the data layer does not read (they are not subset/combined)."""
    known = set(KNOWN_FILES)
    return sorted(
        n
        for n in os.listdir(path)
        if not n.startswith(".")
        and os.path.isfile(os.path.join(path, n))
        and n not in known
        and not is_label_file(n)
    )


def summarize_ids(ids: Iterable[str], limit: int = 5) -> str:
    """``'a, b, c'`` or ``'a, b, c, d, e ... (12 more)'`` for messages."""
    ids = list(ids)
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} ... ({len(ids) - limit} more)"


__all__ = [
    "DataDir",
    "DataDirError",
    "EXTRA_UTT_FILES",
    "KNOWN_FILES",
    "LABEL_FILES",
    "LENIENT_KINDS",
    "TEXT_FILES",
    "REQUIRED_FILES",
    "KVLine",
    "KVProblem",
    "disallowed_whitespace",
    "format_segment",
    "kaldi_text",
    "label_files_in",
    "parse_segment",
    "read_kv",
    "scan_kv",
    "sort_key",
    "sorted_ids",
    "spk2utt_to_utt2spk",
    "summarize_ids",
    "unknown_files_in",
    "utt2spk_line_problem",
    "utt2spk_to_spk2utt",
    "write_kv",
]
