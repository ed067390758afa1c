"""Seed-TTS-Eval test lists and their conversion to data directories.

A Seed-TTS-Eval list (``meta.lst``) has one zero-shot test case per line::

    <utt>|<prompt_text>|<prompt_wav>|<infer_text>[|<gt_wav>]

``prompt_wav`` and ``gt_wav`` may be relative to the folder of the list file. The
prompt defines the voice, so each case is its own speaker.

:func:`seedtts_to_data_dir` writes a data directory with the usual files and two more
that the sampling and decoding stages use for zero-shot prompting:

==============  =================================================================
text            ``<utt> <infer_text>``: what to synthesize
utt2spk         ``<utt> <utt>`` (one speaker per test case)
spk2utt         derived from utt2spk
wav.scp         ``<utt> <gt_wav>`` (absolute), only when every line has a gt_wav
prompt.scp      ``<utt> <prompt_wav>`` (absolute): the audio prompt (voice to clone)
prompt_text     ``<utt> <prompt_text>``: the transcript of the prompt audio
==============  =================================================================

Without ground-truth audio, validate the result with ``required=("text", "utt2spk")``
(``validate_data_dir.sh --required "text utt2spk"``).

Usage::

    from ttsrl.data.seedtts import read_seedtts_list, seedtts_to_data_dir

    items = read_seedtts_list("seedtts_testset/en/meta.lst", check_wavs=True)
    seedtts_to_data_dir("seedtts_testset/en/meta.lst", "data/test_seedtts_en")
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ttsrl.data.datadir import DataDir, DataDirError

logger = logging.getLogger(__name__)

FIELDS = "utt|prompt_text|prompt_wav|infer_text[|gt_wav]"


@dataclass(frozen=True)
class SeedTTSItem:
    """One test case; wav paths are absolute. ``lineno`` is the 1-based line in the list."""

    utt: str
    prompt_text: str
    prompt_wav: str
    infer_text: str
    gt_wav: str | None
    lineno: int


def _resolve(base: str, p: str) -> str:
    return os.path.normpath(p if os.path.isabs(p) else os.path.join(base, p))


def read_seedtts_list(path: str | os.PathLike, check_wavs: bool = False) -> list[SeedTTSItem]:
    """Parse a Seed-TTS-Eval list; raises DataDirError naming ``file:line``.

    Errors: a line without 4 or 5 ``|``-separated fields, an empty or whitespace-containing
    utt id, an empty text or prompt wav, a duplicate utt, bytes that are not UTF-8, and
    (with ``check_wavs``) a prompt or ground-truth wav that does not exist. Blank lines
    are skipped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: Seed-TTS list not found")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    items: list[SeedTTSItem] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(raw_lines, start=1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise DataDirError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        if not line.strip():
            continue
        fields = [x.strip() for x in line.split("|")]
        if len(fields) not in (4, 5):
            raise DataDirError(f"{where}: expected 4 or 5 '|'-separated fields ({FIELDS}), got {len(fields)}")
        utt, prompt_text, prompt_wav, infer_text = fields[:4]
        gt_wav = fields[4] if len(fields) == 5 and fields[4] else None
        if not utt or any(c.isspace() for c in utt):
            raise DataDirError(f"{where}: invalid utt id {utt!r} (empty or contains whitespace)")
        for name, value in (("prompt_text", prompt_text), ("prompt_wav", prompt_wav), ("infer_text", infer_text)):
            if not value:
                raise DataDirError(f"{where}: empty {name} for '{utt}'")
        if utt in seen:
            raise DataDirError(f"{where}: duplicate utt '{utt}' (first on line {seen[utt]})")
        seen[utt] = lineno
        item = SeedTTSItem(
            utt=utt,
            prompt_text=prompt_text,
            prompt_wav=_resolve(base, prompt_wav),
            infer_text=infer_text,
            gt_wav=_resolve(base, gt_wav) if gt_wav else None,
            lineno=lineno,
        )
        if check_wavs:
            for name, wav in (("prompt wav", item.prompt_wav), ("gt wav", item.gt_wav)):
                if wav is not None and not os.path.isfile(wav):
                    raise DataDirError(f"{where}: {name} of '{utt}' not found: {wav}")
        items.append(item)
    if not items:
        raise DataDirError(f"{path}: no test cases")
    return items


def seedtts_to_data_dir(lst: str | os.PathLike, out: str | os.PathLike, check_wavs: bool = True) -> DataDir:
    """Convert a Seed-TTS-Eval list into the data directory ``out`` (files in the module doc).

    Raises DataDirError when only some lines have a gt_wav (wav.scp would be partial).
    """
    items = read_seedtts_list(lst, check_wavs=check_wavs)
    with_gt = [it for it in items if it.gt_wav is not None]
    if with_gt and len(with_gt) != len(items):
        first = next(it for it in items if it.gt_wav is None)
        raise DataDirError(
            f"{os.fspath(lst)}:{first.lineno}: '{first.utt}' has no gt_wav while {len(with_gt)} other line(s) "
            "have one; give every line a gt_wav or none"
        )
    d = DataDir(
        wav_scp={it.utt: it.gt_wav for it in with_gt},  # type: ignore[misc]
        text={it.utt: it.infer_text for it in items},
        utt2spk={it.utt: it.utt for it in items},
        extra={
            "prompt.scp": {it.utt: it.prompt_wav for it in items},
            "prompt_text": {it.utt: it.prompt_text for it in items},
        },
    )
    d.write(out)
    logger.info(
        "%s: wrote %d test case(s) to %s (%s)",
        os.fspath(lst), len(items), os.fspath(out), "with wav.scp" if with_gt else "no ground-truth audio",
    )  # fmt: skip
    return d
