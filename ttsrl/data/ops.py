"""Operations on data directories: fix, split, subset, combine (Kaldi's utils/ tools).

All of them keep every utterance-keyed file (text, utt2spk, ``utt2*`` labels,
prompt.scp, prompt_text, feats.scp), ``segments`` and ``wav.scp`` consistent, write
files sorted and atomically, and regenerate ``spk2utt`` from ``utt2spk``. Files the
data layer does not know (e.g. ``spk2gender``) are not carried over; a warning names them.

Usage::

    from ttsrl.data.ops import combine_data, fix_data_dir, split_data, subset_data_dir

    report = fix_data_dir("data/train")          # report.dropped: {reason: [ids]}
    parts = split_data("data/train", 4)          # ["data/train/split4/1", ..., ".../4"]
    subset_data_dir("data/train", "data/train_100", first=100)
    subset_data_dir("data/train", "data/train_short", shortest=50)
    combine_data("data/all", "data/a", "data/b")
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from ttsrl.data.datadir import (
    EXTRA_UTT_FILES,
    REQUIRED_FILES,
    TEXT_FILES,
    DataDir,
    DataDirError,
    Segment,
    kaldi_text,
    label_files_in,
    parse_segment,
    scan_kv,
    sort_key,
    sorted_ids,
    summarize_ids,
    unknown_files_in,
)
from ttsrl.data.validate import LABEL_VALUES, speaker_order_problem
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

BACKUP_DIR = ".backup"
DROPPED_FILE = "dropped.txt"


# --------------------------------------------------------------------------- fix
@dataclass
class FixReport:
    """What :func:`fix_data_dir` did: ``dropped`` maps a reason to the ids it dropped;
    ``notes`` lists repairs that dropped nothing (sorting, duplicate lines, spk2utt)."""

    path: str
    kept: int
    dropped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    backup_name: str = BACKUP_DIR  # .backup, or .backup.<n> when earlier fixes' originals are kept there

    @property
    def num_dropped(self) -> int:
        """Number of distinct utterances dropped (recordings and malformed lines not counted)."""
        return len({i for reason, ids in self.dropped.items() if not reason.startswith("(") for i in ids})

    @property
    def backup_dir(self) -> str:
        return os.path.join(self.path, self.backup_name)

    def add(self, reason: str, key: str) -> None:
        self.dropped.setdefault(reason, []).append(key)


def _lenient_read(path: str, report: FixReport, allow_empty: bool = False) -> dict[str, str]:
    """Read what parses; malformed lines and conflicting duplicates are recorded in ``report``."""
    name = os.path.basename(path)
    lines, problems = scan_kv(path, allow_empty_value=allow_empty)
    for p in problems:
        if p.kind in ("encoding", "empty-line", "leading-space", "empty-value"):
            report.add(f"(malformed line removed from {name})", f"{name}:{p.lineno}")
        elif p.kind == "unsorted":
            report.notes.append(f"{name} was not sorted; sorted")
        elif p.kind == "carriage-return":
            report.notes.append(f"{name}:{p.lineno}: Windows line ending removed")
        elif p.kind == "no-final-newline":
            report.notes.append(f"{name}: newline added at the end of the file")
    out: dict[str, str] = {}
    conflicting: set[str] = set()
    for line in lines:
        if line.key in out:
            if out[line.key] != line.value:
                conflicting.add(line.key)
            else:
                report.notes.append(f"{name}:{line.lineno}: repeated line for '{line.key}' removed")
            continue
        out[line.key] = line.value
    for key in sorted_ids(conflicting):
        report.add(f"conflicting duplicate lines in {name}", key)
        del out[key]
    return out


def _lenient_segments(path: str, report: FixReport) -> dict[str, Segment]:
    segments: dict[str, Segment] = {}
    for key, value in _lenient_read(path, report).items():
        try:
            rec, start, end = parse_segment(value)
        except ValueError:
            report.add("malformed segments line", key)
            continue
        if start < 0 or (end != -1 and end <= start):
            report.add("segment end <= start or start < 0", key)
            continue
        segments[key] = (rec, start, end)
    return segments


def _write_dropped(report: FixReport) -> None:
    lines = [
        f"# fix_data_dir {report.path}: kept {report.kept} utterance(s), dropped {report.num_dropped}",
        "# <id> <reason>; ids in parentheses are lines or recordings, not utterances",
    ]
    for reason, ids in report.dropped.items():
        lines.append(f"# {reason}: {len(ids)}")
        lines.extend(f"{i} {reason}" for i in ids)
    lines.extend(f"# note: {n}" for n in report.notes)
    atomic_write_text(os.path.join(report.backup_dir, DROPPED_FILE), "\n".join(lines) + "\n")


def next_backup_name(path: str) -> str:
    """``.backup`` for the first fix of ``path``, then ``.backup.2``, ``.backup.3``, ...: a second fix
    must not overwrite the originals with already-fixed files (Kaldi's fix_data_dir.sh does)."""
    if not os.path.exists(os.path.join(path, BACKUP_DIR)):
        return BACKUP_DIR
    n = 2
    while os.path.exists(os.path.join(path, f"{BACKUP_DIR}.{n}")):
        n += 1
    return f"{BACKUP_DIR}.{n}"


def fix_data_dir(path: str | os.PathLike, required: Sequence[str] = REQUIRED_FILES) -> FixReport:
    """Make a data directory consistent, in place (Kaldi's fix_data_dir.sh).

    Keeps only the utterances present in every required file, in ``segments`` (whose
    recording is in wav.scp) and in every label and extra file; drops utterances with an
    empty text, a malformed line, conflicting duplicate lines or an invalid segment;
    drops wav.scp recordings no segment uses; sorts every file and regenerates spk2utt.
    The original files are copied to ``<dir>/.backup/`` first and the dropped ids, with
    their reasons, are logged and written to ``<dir>/.backup/dropped.txt``; a later fix of the
    same dir writes to ``.backup.2/``, ``.backup.3/``, ..., so the first originals are never lost.
    Raises DataDirError when a required file is missing or nothing would be left
    (then nothing is written).
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise DataDirError(f"{path}: not a directory")
    missing = [n for n in required if not os.path.isfile(os.path.join(path, n))]
    if missing:
        raise DataDirError(f"{path}: missing required file(s): {', '.join(missing)}")
    report = FixReport(path=path, kept=0)

    def fp(name: str) -> str:
        return os.path.join(path, name)

    def opt(name: str, allow_empty: bool = False) -> dict[str, str]:
        return _lenient_read(fp(name), report, allow_empty) if os.path.isfile(fp(name)) else {}

    wav_scp = opt("wav.scp")
    text = opt("text", allow_empty=True)
    utt2spk = opt("utt2spk")
    segments = _lenient_segments(fp("segments"), report) if os.path.isfile(fp("segments")) else None
    labels = {n: opt(n) for n in label_files_in(path)}
    extra = {n: opt(n) for n in EXTRA_UTT_FILES if os.path.isfile(fp(n))}
    for name, mapping in (("text", text), *((n, m) for n, m in extra.items() if n in TEXT_FILES)):
        changed = [k for k, v in mapping.items() if kaldi_text(v) != v]
        if changed:
            report.notes.append(f"{name}: Unicode spaces Kaldi rejects replaced by ASCII spaces in {len(changed)} "
                                f"line(s), e.g. '{changed[0]}'")

    # candidate utterances, and per file the ids it has, in the order reasons are given
    checks: list[tuple[str, set[str]]] = []
    for name, mapping in (("utt2spk", utt2spk), ("text", text)):
        if os.path.isfile(fp(name)):
            checks.append((f"missing from {name}", set(mapping)))
    if utt2spk:
        checks.append(("utt2spk line with more than 2 fields", {u for u, spk in utt2spk.items() if len(spk.split()) == 1}))
    if text:
        checks.append(("empty text", {k for k, v in text.items() if v}))
    if segments is not None:
        checks.append(("missing from segments", set(segments)))
        checks.append(("recording missing from wav.scp", {k for k, s in segments.items() if s[0] in wav_scp}))
    elif os.path.isfile(fp("wav.scp")):
        checks.append(("missing from wav.scp", set(wav_scp)))
    for name, mapping in (*labels.items(), *extra.items()):
        checks.append((f"missing from {name}", set(mapping)))
        check = LABEL_VALUES.get(name)
        if check is not None:
            checks.append((f"invalid value in {name}", {k for k, v in mapping.items() if check(v) is None}))

    candidates = set(utt2spk) | set(text)
    for mapping in (*labels.values(), *extra.values()):
        candidates |= set(mapping)
    candidates |= set(segments) if segments is not None else set(wav_scp)
    keep = set(candidates)
    for reason, present in checks:
        for utt in sorted_ids(keep - present):
            report.add(reason, utt)
        keep &= present
    if not keep:
        raise DataDirError(
            f"{path}: no utterance is present in every file; nothing written. "
            + "; ".join(f"{r}: {len(ids)}" for r, ids in report.dropped.items())
        )

    d = DataDir(wav_scp=wav_scp, text=text, utt2spk=utt2spk, segments=segments, labels=labels, extra=extra)
    fixed = d.subset(keep)
    if segments is not None:
        for rec in sorted_ids(set(wav_scp) - set(fixed.wav_scp)):
            report.add("(recording not used by any kept segment, removed from wav.scp)", rec)
    if os.path.isfile(fp("spk2utt")):
        old = _lenient_read(fp("spk2utt"), FixReport(path=path, kept=0))
        if {k: v.split() for k, v in old.items()} != fixed.spk2utt:
            report.notes.append("spk2utt differed from utt2spk; regenerated")
    report.kept = len(keep)

    report.backup_name = next_backup_name(path)
    backup = report.backup_dir
    os.makedirs(backup, exist_ok=True)
    for name in ("wav.scp", "segments", "text", "utt2spk", "spk2utt", *labels, *extra):
        if os.path.isfile(fp(name)):
            shutil.copy2(fp(name), os.path.join(backup, name))
    _write_dropped(report)
    fixed.write(path)

    for reason, ids in report.dropped.items():
        logger.warning("%s: dropped %d %s: %s", path, len(ids), reason, summarize_ids(ids))
    for note in report.notes[:20]:
        logger.info("%s: %s", path, note)
    logger.info(
        "%s: kept %d utterance(s), dropped %d; originals and %s in %s",
        path, report.kept, report.num_dropped, DROPPED_FILE, backup,
    )  # fmt: skip
    ignored = unknown_files_in(path)
    if ignored:
        logger.warning("%s: not checked by fix_data_dir (may now be inconsistent): %s", path, " ".join(ignored))
    unprefixed = speaker_order_problem(fixed.utt2spk)
    if unprefixed:  # ids are not renamed: that is the corpus preparation's choice
        logger.warning("%s: %s", path, unprefixed)
    return report


# --------------------------------------------------------------------------- split
def _chunk_bounds(weights: list[int], n: int) -> list[int]:
    """Indices splitting ``weights`` into ``n`` non-empty contiguous chunks of near-equal sum."""
    total = sum(weights)
    cum = [0]
    for w in weights:
        cum.append(cum[-1] + w)
    bounds = [0]
    for k in range(1, n):
        lo, hi = bounds[-1] + 1, len(weights) - (n - k)
        target = total * k / n
        best = min(range(lo, hi + 1), key=lambda i: (abs(cum[i] - target), i))
        bounds.append(best)
    bounds.append(len(weights))
    return bounds


def split_data(path: str | os.PathLike, n: int, per_spk: bool = False) -> list[str]:
    """Split a data directory into ``<dir>/split<n>/{1..n}`` (Kaldi's split_data.sh).

    Parts are contiguous in sorted order with near-equal utterance counts; with
    ``per_spk`` every speaker stays within one part. Any previous ``split<n>`` is
    replaced (the new one is built under a temporary name first). Returns the part dirs.
    """
    path = os.fspath(path)
    if n < 1:
        raise DataDirError(f"split_data: number of parts must be >= 1, got {n}")
    d = DataDir.load(path)
    if not d.utt2spk:
        raise DataDirError(f"{path}: utt2spk missing or empty; cannot split")
    if per_spk:
        spk2utt = d.spk2utt
        units = [spk2utt[s] for s in spk2utt]
        if len(units) < n:
            raise DataDirError(f"{path}: cannot split {len(units)} speaker(s) into {n} parts (per speaker)")
    else:
        units = [[u] for u in d.utts]
        if len(units) < n:
            raise DataDirError(f"{path}: cannot split {len(units)} utterance(s) into {n} parts")
    bounds = _chunk_bounds([len(u) for u in units], n)
    final = os.path.join(path, f"split{n}")
    tmp = os.path.join(path, f".split{n}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for k in range(n):
        part = [u for unit in units[bounds[k] : bounds[k + 1]] for u in unit]
        d.subset(part).write(os.path.join(tmp, str(k + 1)))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    logger.info("%s: split into %d part(s) under %s%s", path, n, final, " (per speaker)" if per_spk else "")
    return [os.path.join(final, str(k + 1)) for k in range(n)]


# --------------------------------------------------------------------------- subset
def _read_id_list(path: str) -> list[str]:
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields:
                ids.append(fields[0])
    return ids


def subset_data_dir(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    first: int | None = None,
    last: int | None = None,
    utt_list: str | os.PathLike | None = None,
    spk_list: str | os.PathLike | None = None,
    shortest: int | None = None,
) -> DataDir:
    """Write a subset of ``path`` to ``out``; exactly one selector must be given.

    ``first``/``last``: the first/last N utterances in sorted order; ``shortest``: the
    N shortest (utt2dur, else segments, else audio headers); ``utt_list``/``spk_list``:
    a file with one id per line (first field), ids not in the directory are warned about.
    """
    path, out = os.fspath(path), os.fspath(out)
    given = {k: v for k, v in dict(first=first, last=last, utt_list=utt_list, spk_list=spk_list,
                                   shortest=shortest).items() if v is not None}  # fmt: skip
    if len(given) != 1:
        raise DataDirError(f"subset_data_dir: give exactly one of first, last, utt_list, spk_list, shortest (got {sorted(given) or 'none'})")
    if os.path.abspath(path) == os.path.abspath(out):
        raise DataDirError(f"subset_data_dir: output {out} is the source directory")
    d = DataDir.load(path)
    utts = d.utts
    (how, arg), = given.items()
    if how in ("first", "last", "shortest"):
        num = int(arg)
        if num < 1 or num > len(utts):
            raise DataDirError(f"{path}: asked for {how} {num} utterance(s), the directory has {len(utts)}")
        if how == "first":
            keep = utts[:num]
        elif how == "last":
            keep = utts[-num:]
        else:
            from ttsrl.data.audio import utt_durations

            dur = utt_durations(d)
            keep = sorted(utts, key=lambda u: (dur[u], sort_key(u)))[:num]
    else:
        ids = _read_id_list(os.fspath(arg))
        pool = set(utts) if how == "utt_list" else set(d.spk2utt)
        unknown = [i for i in ids if i not in pool]
        if unknown:
            logger.warning("%s: %d id(s) of %s are not in %s: %s", arg, len(unknown), arg, path, summarize_ids(unknown))
        wanted = set(ids)
        keep = [u for u in utts if (u if how == "utt_list" else d.utt2spk.get(u)) in wanted]
        if not keep:
            raise DataDirError(f"{path}: no utterance selected by {how} {arg}")
    sub = d.subset(keep)
    sub.write(out)
    _warn_unknown(path)
    logger.info("%s: wrote %d of %d utterance(s) to %s (%s)", path, len(keep), len(utts), out, how)
    return sub


# --------------------------------------------------------------------------- combine
def _warn_unknown(*dirs: str) -> None:
    for p in dirs:
        ignored = unknown_files_in(p)
        if ignored:
            logger.warning("%s: not carried over (unknown to the data layer): %s", p, " ".join(ignored))


def combine_data(out: str | os.PathLike, *dirs: str | os.PathLike) -> DataDir:
    """Concatenate data directories into ``out`` (Kaldi's combine_data.sh).

    Raises DataDirError on an utterance id present in two inputs, or a recording id with
    different wav.scp entries. If some inputs have ``segments`` and others not, the latter
    get whole-recording segments (``<utt> <utt> 0 -1``). Label and extra files are kept
    only when every input has them (a warning names the others).
    """
    out = os.fspath(out)
    if not dirs:
        raise DataDirError("combine_data: no input directories")
    paths = [os.fspath(p) for p in dirs]
    if os.path.abspath(out) in {os.path.abspath(p) for p in paths}:
        raise DataDirError(f"combine_data: output {out} is one of the inputs")
    loaded = [DataDir.load(p) for p in paths]
    owner: dict[str, str] = {}
    dups: list[str] = []
    for p, d in zip(paths, loaded, strict=True):
        for u in d.utts:
            if u in owner:
                dups.append(f"'{u}' ({owner[u]} and {p})")
            else:
                owner[u] = p
    if dups:
        raise DataDirError(f"combine_data: {len(dups)} duplicate utterance id(s): {summarize_ids(dups)}")

    use_segments = any(d.segments is not None for d in loaded)
    merged = DataDir(segments={} if use_segments else None)
    rec_owner: dict[str, str] = {}
    for p, d in zip(paths, loaded, strict=True):
        merged.text.update(d.text)
        merged.utt2spk.update(d.utt2spk)
        if use_segments and d.segments is None:
            segments = {u: (u, 0.0, -1.0) for u in d.utts if u in d.wav_scp}
        else:
            segments = d.segments
        if merged.segments is not None and segments is not None:
            merged.segments.update(segments)
        for rec, spec in d.wav_scp.items():
            if rec in merged.wav_scp and merged.wav_scp[rec] != spec:
                raise DataDirError(
                    f"combine_data: recording '{rec}' has different wav.scp entries in {rec_owner[rec]} and {p}"
                )
            merged.wav_scp[rec] = spec
            rec_owner.setdefault(rec, p)
    for attr in ("labels", "extra"):
        names = set().union(*(getattr(d, attr).keys() for d in loaded))
        for name in sorted(names):
            have = [p for p, d in zip(paths, loaded, strict=True) if name in getattr(d, attr)]
            if len(have) == len(paths):
                target = getattr(merged, attr).setdefault(name, {})
                for d in loaded:
                    target.update(getattr(d, attr)[name])
            else:
                logger.warning("combine_data: %s is not in every input (only %s); not combined", name, ", ".join(have))
    merged.write(out)
    _warn_unknown(*paths)
    logger.info("combined %d utterance(s) from %d dir(s) into %s", len(merged.utts), len(paths), out)
    return merged


__all__ = ["FixReport", "combine_data", "fix_data_dir", "split_data", "subset_data_dir"]
