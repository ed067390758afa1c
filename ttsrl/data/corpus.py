"""Helpers shared by the recipes of real corpora (egs/<corpus>/*/local/).

A corpus preparation script turns a corpus into a list of :class:`Utterance` records and
calls :func:`write_data_dir`, which writes the Kaldi-style data dir::

    wav.scp  text  utt2spk  spk2utt  utt2<label> (one per label, e.g. utt2lang, utt2gender)
    prompt.scp  prompt_text  (test sets: the zero-shot prompt of each utterance)

The prompt convention of ttsrl: ``prompt.scp`` maps an utterance to the wav spec of a
*different* utterance of the *same* speaker, ``prompt_text`` to that utterance's text; a
zero-shot model hears the prompt and speaks ``text`` in the prompt's voice.

Also here: the sox pipe that resamples a source to the data dir's rate, age groups, a
report of the utterances a corpus could not use, and fetching/extracting the official
archives (``local/download.py`` of each recipe).

Example::

    from ttsrl.data.corpus import Utterance, pick_prompts, wav_spec, write_data_dir

    utts = [Utterance("LJ001-0001", "LJ", wav_spec("/db/LJ001-0001.wav", 16000, 22050),
                      "Printing, in the only sense ...", {"lang": "en", "gender": "f"}), ...]
    write_data_dir("data/test", utts, prompts=pick_prompts(utts))
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import tarfile
import urllib.parse
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ttsrl.data.datadir import kaldi_text, sort_key, utt2spk_to_spk2utt, write_kv
from ttsrl.utils.cli import setup_logging

logger = logging.getLogger(__name__)


class CorpusError(RuntimeError):
    """A corpus is missing, incomplete or cannot be fetched; the message says what to do."""


@dataclass(frozen=True)
class Utterance:
    """One utterance of a data dir.

    utt: utterance id; must start with ``spk`` so that sorting by utterance groups speakers.
    spk: speaker id.
    wav: wav.scp entry: a file path, or a command ending in ``|`` that writes a wav to stdout.
    text: the transcript (one line).
    labels: ``{"lang": "en", "gender": "f", ...}``; each key becomes a file ``utt2<key>``.
    """

    utt: str
    spk: str
    wav: str
    text: str
    labels: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------- audio specs


def wav_spec(path: str | os.PathLike, fs: int, native_fs: int | None = None) -> str:
    """The wav.scp entry of ``path`` for a data dir at ``fs`` Hz.

    A 16-bit wav already at ``fs`` is used as is; anything else (another rate, flac, a path
    with spaces) goes through a sox pipe. ``-R`` makes sox seed its dither generator with a
    fixed number: without it the same entry gives different samples on every read.
    """
    path = str(path)
    if native_fs == fs and path.lower().endswith(".wav") and not any(c.isspace() for c in path):
        return path
    return f"sox -R {shlex.quote(path)} -t wav -r {fs} -b 16 - |"


def audio_durations(paths: Mapping[str, str | os.PathLike]) -> dict[str, float]:
    """Durations in seconds read from the headers of ``{utt: path}`` (unreadable files: absent)."""
    import soundfile

    out = {}
    for utt, path in paths.items():
        try:
            out[utt] = soundfile.info(str(path)).duration
        except (RuntimeError, OSError) as err:  # soundfile raises LibsndfileError(RuntimeError)
            logger.warning("cannot read the header of %s: %s", path, err)
    return out


# Upper bounds (exclusive, in years) of the age classes that data dirs use (AGE_CLASSES of
# ttsrl.data.validate): child < 13 <= teen < 20 <= young < 30 <= adult < 45 <= middle < 60 <= senior.
AGE_BOUNDS: tuple[tuple[int, str], ...] = (
    (13, "child"),
    (20, "teen"),
    (30, "young"),
    (45, "adult"),
    (60, "middle"),
)


def age_group(age: int) -> str:
    """The age class (a value of utt2age) of an age in years, see :data:`AGE_BOUNDS`."""
    if age < 0:
        raise ValueError(f"negative age {age}")
    for upper, name in AGE_BOUNDS:
        if age < upper:
            return name
    return "senior"


# ---------------------------------------------------------------------------- reporting


class SkipReport:
    """Collects the utterances a corpus could not use, by reason, so that none goes unreported."""

    def __init__(self) -> None:
        self.by_reason: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, utt: str) -> None:
        self.by_reason[reason].append(utt)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_reason.values())

    def summary(self, total: int, name: str = "corpus") -> str:
        """``<name>: skipped 3 of 120 utterances:`` then one line per reason with its count and
        the first ids, e.g. ``  2 without text (p315_001, p315_002)``."""
        if not self:
            return f"{name}: all {total} utterances used, none skipped"
        lines = [f"{name}: skipped {len(self)} of {total} utterances:"]
        for reason in sorted(self.by_reason):
            utts = sorted(self.by_reason[reason])
            shown = ", ".join(utts[:5]) + (", ..." if len(utts) > 5 else "")
            lines.append(f"  {len(utts)} {reason} ({shown})")
        return "\n".join(lines)

    def log(self, total: int, name: str = "corpus") -> None:
        """Logs the summary: a warning when something was skipped."""
        logger.log(logging.WARNING if self else logging.INFO, "%s", self.summary(total, name))

    def write(self, path: str | os.PathLike) -> None:
        """``<utt> <reason>`` per line, sorted; written even when empty, so its absence means nothing ran."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_kv(path, {u: r for r, us in self.by_reason.items() for u in us})


# ---------------------------------------------------------------------------- data dirs


def check_utterances(utts: Sequence[Utterance]) -> None:
    """Raises ValueError on what a data dir cannot hold: duplicate or malformed ids, empty text,
    labels given for some utterances only, or ids whose order disagrees with their speakers'."""
    if not utts:
        raise ValueError("no utterances")
    seen: set[str] = set()
    keys = set(utts[0].labels)
    for u in utts:
        for what, value in (("utterance id", u.utt), ("speaker id", u.spk)):
            if not value or any(c.isspace() for c in value):
                raise ValueError(f"{what} {value!r} is empty or contains whitespace")
        if u.utt in seen:
            raise ValueError(f"duplicate utterance id {u.utt}")
        seen.add(u.utt)
        if not u.utt.startswith(u.spk):
            raise ValueError(f"utterance id {u.utt} does not start with its speaker id {u.spk}")
        if not u.text.strip() or "\n" in u.text:
            raise ValueError(f"utterance {u.utt}: empty or multi-line text")
        if not u.wav.strip() or "\n" in u.wav:
            raise ValueError(f"utterance {u.utt}: empty or multi-line wav spec")
        if set(u.labels) != keys:
            raise ValueError(f"utterance {u.utt} has labels {sorted(u.labels)}, others {sorted(keys)}")
        for key, value in u.labels.items():
            if not value or any(c.isspace() for c in value):
                raise ValueError(f"utterance {u.utt}: label {key}={value!r} is empty or has whitespace")
    # Kaldi's rule: utt2spk sorted by utterance must also be sorted by speaker. A speaker id
    # that is a prefix of another ("200" and "2002") breaks it when the next character of the
    # utterance id sorts after digits, as "_" does.
    by_utt = sorted(utts, key=lambda u: sort_key(u.utt))
    by_spk = sorted(utts, key=lambda u: (sort_key(u.spk), sort_key(u.utt)))
    for a, b in zip(by_utt, by_spk, strict=True):
        if a.utt != b.utt:
            raise ValueError(
                f"utterance order disagrees with speaker order at {a.utt} (speaker {a.spk}) vs "
                f"{b.utt} (speaker {b.spk}): make the speaker id followed by a separator that sorts "
                "before digits and letters (e.g. '-') the prefix of every utterance id"
            )


def pick_prompts(
    utts: Sequence[Utterance],
    durations: Mapping[str, float] | None = None,
    min_dur: float = 3.0,
    max_dur: float = 10.0,
) -> dict[str, Utterance]:
    """The zero-shot prompt of every utterance: another utterance of the same speaker in ``utts``.

    Deterministic: the next utterance of the speaker in sorted order (wrapping around), among
    those lasting ``min_dur``..``max_dur`` seconds when ``durations`` are known and the speaker
    has such utterances (prompts of 3-10 s are what zero-shot models are evaluated with).
    Raises ValueError naming the speakers with a single utterance.
    """
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in sorted(utts, key=lambda u: sort_key(u.utt)):
        by_spk[u.spk].append(u)
    lonely = sorted(s for s, us in by_spk.items() if len(us) < 2)
    if lonely:
        raise ValueError(f"speakers with a single utterance cannot be prompted: {' '.join(lonely)}")
    prompts = {}
    for spk_utts in by_spk.values():
        good = set()
        if durations is not None:
            good = {u.utt for u in spk_utts if min_dur <= durations.get(u.utt, -1.0) <= max_dur}
        n = len(spk_utts)
        for i, u in enumerate(spk_utts):
            others = [spk_utts[(i + k) % n] for k in range(1, n)]
            preferred = [o for o in others if o.utt in good]
            prompts[u.utt] = (preferred or others)[0]
    return prompts


def write_data_dir(
    out_dir: str | os.PathLike,
    utts: Iterable[Utterance],
    prompts: Mapping[str, Utterance] | None = None,
) -> None:
    """Writes a data dir (see the module docstring), replacing ``out_dir`` as a whole.

    The files go to a temporary folder next to ``out_dir`` that is renamed at the end, so a
    failure leaves the previous data dir untouched.
    """
    utts = sorted(utts, key=lambda u: sort_key(u.utt))
    check_utterances(utts)
    if prompts is not None:
        missing = [u.utt for u in utts if u.utt not in prompts]
        if missing:
            raise ValueError(f"no prompt for {len(missing)} utterances, e.g. {missing[0]}")
        for u in utts:
            p = prompts[u.utt]
            if p.utt == u.utt or p.spk != u.spk:
                raise ValueError(f"prompt {p.utt} of {u.utt} is not another utterance of speaker {u.spk}")

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        files: dict[str, Mapping[str, str | list[str]]] = {
            "wav.scp": {u.utt: u.wav for u in utts},
            "text": {u.utt: kaldi_text(u.text) for u in utts},  # Kaldi's validate_text.pl: ASCII spaces only
            "utt2spk": {u.utt: u.spk for u in utts},
            "spk2utt": utt2spk_to_spk2utt({u.utt: u.spk for u in utts}),
        }
        for key in utts[0].labels:
            files[f"utt2{key}"] = {u.utt: u.labels[key] for u in utts}
        if prompts is not None:
            files["prompt.scp"] = {u.utt: prompts[u.utt].wav for u in utts}
            files["prompt_text"] = {u.utt: kaldi_text(prompts[u.utt].text) for u in utts}
        for name, mapping in files.items():
            write_kv(tmp / name, mapping)
        old = out_dir.with_name(f".{out_dir.name}.old{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote %s: %d utterances, %d speakers", out_dir, len(utts), len({u.spk for u in utts}))


def clean_text(text: str) -> str:
    """Collapses runs of whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


# ---------------------------------------------------------------------------- archives


def fetch(
    url: str, dest_dir: str | os.PathLike, checksums: Mapping[str, str] | None = None, layout: str = ""
) -> Path:
    """Downloads ``url`` into ``dest_dir`` with curl (or wget), resuming a partial download;
    returns the archive's path (its name is the last part of the URL's path).

    ``checksums`` maps archive names to ``"md5:<hex>"`` or ``"sha256:<hex>"``; the archive is
    verified when its name is there (a mirror serves the same file under the same name). On
    failure raises CorpusError naming the URL and, when given, the ``layout`` the user can
    create by hand instead.
    """
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise CorpusError(f"cannot tell the archive name from the URL {url}")
    dest = Path(dest_dir) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        logger.info("%s already downloaded", dest)
    else:
        if shutil.which("curl"):
            cmd = ["curl", "--fail", "--location", "--retry", "3", "-C", "-", "-o", str(part), url]
        elif shutil.which("wget"):
            cmd = ["wget", "--continue", "--tries=3", "-O", str(part), url]
        else:
            raise CorpusError(f"neither curl nor wget is installed: download {url} by hand{_hint(layout)}")
        logger.info("downloading %s to %s", url, dest)
        if subprocess.run(cmd).returncode != 0:
            raise CorpusError(f"could not download {url} (no network?){_hint(layout)}")
        part.rename(dest)
    checksum = (checksums or {}).get(name)
    if checksum:
        algo, _, want = checksum.partition(":")
        logger.info("checking the %s of %s", algo, dest)
        got = file_hash(dest, algo)
        if got != want:
            raise CorpusError(
                f"{dest} has {algo} {got}, expected {want} for {url}: the download is corrupt or the "
                f"archive was re-released; delete {dest} and retry{_hint(layout)}"
            )
    else:
        logger.info("no known checksum for %s; not verified", name)
    return dest


def _hint(layout: str) -> str:
    if not layout:
        return ""
    return f". Or download and extract it by hand into this layout: {layout}; then rerun with --download false"


def file_hash(path: str | os.PathLike, algo: str = "md5", chunk: int = 1 << 22) -> str:
    """The hex digest of a file (``algo``: any name hashlib knows, e.g. md5, sha256)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> None:
    """Extracts a .tar(.gz|.bz2|.xz) or .zip archive into ``dest_dir``.

    The archive is unpacked into a temporary folder inside ``dest_dir`` whose entries are then
    moved into place, so an interrupted extraction never leaves a half-filled corpus folder
    that would pass for a complete one. Members that would land outside ``dest_dir`` and
    links are refused.
    """
    from tqdm import tqdm

    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".extract.{archive.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    root = tmp.resolve()
    logger.info("extracting %s into %s", archive, dest_dir)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in tqdm(zf.infolist(), desc=archive.name, unit="file"):
                    _check_inside(root, info.filename, archive)
                    zf.extract(info, tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tqdm(tf, desc=archive.name, unit="file"):
                    _check_inside(root, member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise CorpusError(f"{archive}: {member.name} is neither a file nor a folder")
                    tf.extract(member, tmp, set_attrs=False, **_TAR_FILTER)
        else:
            raise CorpusError(f"{archive} is neither a tar nor a zip archive (an error page?): delete it")
        _merge(tmp, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(src: Path, dst: Path) -> None:
    """Moves the entries of ``src`` into ``dst``, descending into folders both have."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _merge(entry, target)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)


# Python >= 3.12 warns unless extraction filters are chosen; "data" also refuses unsafe members.
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _check_inside(root: Path, name: str, archive: Path) -> None:
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise CorpusError(f"{archive}: member {name} would be extracted outside {root}")


# ---------------------------------------------------------------------------- scripts


def run_script(body: Callable[[], None]) -> int:
    """Runs the body of a corpus script with logging set up; returns its exit code.

    A CorpusError or ValueError (bad corpus content) is logged as one ERROR line instead of
    a traceback: the message already says what is wrong and where.
    """
    setup_logging("INFO")
    try:
        body()
    except (CorpusError, ValueError) as err:
        logger.error("%s", err)
        return 1
    return 0
