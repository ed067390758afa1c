#!/usr/bin/env python3
"""Writes the data dirs train, dev and test of VCTK-Corpus-0.92 (110 English speakers, 48 kHz).

Reads <db_dir>/VCTK-Corpus-0.92/speaker-info.txt (``ID AGE GENDER ACCENTS REGION COMMENTS``,
whitespace-separated, ids like p225), txt/<spk>/<spk>_<nnn>.txt (the text) and
wav48_silence_trimmed/<spk>/<spk>_<nnn>_<mic>.flac (--mic mic1 or mic2).

dev and test hold out whole speakers (--dev_speakers, --test_speakers), so that test measures
zero-shot cloning of unseen voices; every other speaker is train. Test utterances are
prompted with another utterance of their speaker (prompt.scp, prompt_text). Labels: utt2lang,
utt2gender (f/m) and utt2age (the age group of speaker-info's AGE: teens, twenties, ...).

The corpus has gaps: p315 has no text, p280 no mic2 audio, and some utterances lack one or
the other. Such utterances are skipped and counted by reason in the log and in
<data_dir>/local/skipped_utts.

Usage: local/prepare_data.py --db_dir downloads --data_dir data [--fs 16000] [--mic mic1]
           [--dev_speakers p226 p228] [--test_speakers p225 ...]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

from ttsrl.data.corpus import (
    CorpusError,
    SkipReport,
    Utterance,
    age_group,
    audio_durations,
    clean_text,
    pick_prompts,
    run_script,
    wav_spec,
    write_data_dir,
)

NATIVE_FS = 48000
# Held-out speakers: 2 for dev, 8 for test, women and men from several accent groups.
DEV_SPEAKERS = ("p226", "p228")
TEST_SPEAKERS = ("p225", "p227", "p237", "p245", "p261", "p294", "p302", "p335")
logger = logging.getLogger("prepare_data")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="folder holding VCTK-Corpus-0.92/")
    p.add_argument("--data_dir", required=True, help="where data/{train,dev,test} are written")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of the data dirs")
    p.add_argument("--mic", default="mic1", choices=("mic1", "mic2"), help="which microphone's audio")
    p.add_argument("--dev_speakers", nargs="+", default=list(DEV_SPEAKERS))
    p.add_argument("--test_speakers", nargs="+", default=list(TEST_SPEAKERS))
    return p


def read_speaker_info(path: Path) -> dict[str, tuple[int, str]]:
    """``{speaker: (age, "f"|"m")}``; ids without the 'p' of release 0.92 (older releases) get it."""
    info = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].upper() == "ID":
                continue
            if len(fields) < 3 or not fields[1].isdigit() or fields[2].upper() not in ("F", "M"):
                raise ValueError(f"{path}:{lineno}: expected 'ID AGE GENDER ...', got {line.strip()!r}")
            spk = f"p{fields[0]}" if fields[0].isdigit() else fields[0]
            info[spk] = (int(fields[1]), fields[2].lower())
    return info


def read_corpus(corpus: Path, fs: int, mic: str, skipped: SkipReport) -> tuple[list[Utterance], dict[str, Path]]:
    """The usable utterances and their source flac files."""
    info_file = corpus / "speaker-info.txt"
    if not info_file.is_file():
        raise CorpusError(
            f"VCTK-Corpus-0.92 not found: expected {info_file}, {corpus}/txt/<spk>/<spk>_<nnn>.txt and "
            f"{corpus}/wav48_silence_trimmed/<spk>/<spk>_<nnn>_{mic}.flac (point --db_dir at the folder "
            "holding VCTK-Corpus-0.92, or pass --download true)"
        )
    info = read_speaker_info(info_file)
    suffix = f"_{mic}.flac"
    texts = {p.stem: p for p in (corpus / "txt").glob("*/*.txt")}
    audio = {p.name[: -len(suffix)]: p for p in (corpus / "wav48_silence_trimmed").glob(f"*/*{suffix}")}
    if not audio:
        raise CorpusError(f"no {corpus}/wav48_silence_trimmed/<spk>/<spk>_<nnn>{suffix}")
    utts, flacs = [], {}
    for utt in sorted(texts.keys() | audio.keys()):
        spk = utt.split("_")[0]
        if utt not in audio:
            skipped.add(f"without {mic} audio", utt)
        elif utt not in texts:
            skipped.add("without text", utt)
        elif spk not in info:
            skipped.add("of a speaker missing from speaker-info.txt", utt)
        elif not (text := clean_text(texts[utt].read_text(encoding="utf-8"))):
            skipped.add("with an empty text", utt)
        else:
            age, gender = info[spk]
            labels = {"lang": "en", "gender": gender, "age": age_group(age)}
            utts.append(Utterance(utt, spk, wav_spec(audio[utt], fs, NATIVE_FS), text, labels))
            flacs[utt] = audio[utt]
    unusable = sorted({u.split("_")[0] for u in texts.keys() | audio.keys()} - {u.spk for u in utts})
    if unusable:
        logger.warning("speakers without any usable utterance: %s", " ".join(unusable))
    return utts, flacs


def prepare(args: argparse.Namespace) -> None:
    corpus = Path(args.db_dir).resolve() / "VCTK-Corpus-0.92"
    data_dir = Path(args.data_dir)
    skipped = SkipReport()
    utts, flacs = read_corpus(corpus, args.fs, args.mic, skipped)
    skipped.log(len(utts) + len(skipped), "VCTK-Corpus-0.92")
    skipped.write(data_dir / "local" / "skipped_utts")

    held_out = {"dev": set(args.dev_speakers), "test": set(args.test_speakers)}
    if held_out["dev"] & held_out["test"]:
        raise ValueError(f"speakers in both dev and test: {' '.join(sorted(held_out['dev'] & held_out['test']))}")
    usable = {u.spk for u in utts}
    for name, speakers in held_out.items():
        if speakers - usable:
            raise ValueError(f"--{name}_speakers {' '.join(sorted(speakers - usable))}: no usable utterance "
                             f"of these speakers in {corpus} (see the skipped utterances above)")
    sets = {
        "train": [u for u in utts if u.spk not in held_out["dev"] | held_out["test"]],
        "dev": [u for u in utts if u.spk in held_out["dev"]],
        "test": [u for u in utts if u.spk in held_out["test"]],
    }
    if not sets["train"]:
        raise ValueError("every speaker is held out: train would be empty")
    for name, members in sets.items():
        genders = Counter(u.labels["gender"] for u in {u.spk: u for u in members}.values())
        logger.info("%s: %d speakers (%d f, %d m)", name, len({u.spk for u in members}),
                    genders["f"], genders["m"])
    prompts = {"test": pick_prompts(sets["test"], audio_durations({u.utt: flacs[u.utt] for u in sets["test"]}))}
    for name, members in sets.items():
        write_data_dir(data_dir / name, members, prompts.get(name))


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    return run_script(lambda: prepare(args))


if __name__ == "__main__":
    sys.exit(main())
