#!/usr/bin/env python3
"""Writes the data dirs train, dev and test of LibriTTS-R (multi-speaker read English, 24 kHz).

Reads <db_dir>/LibriTTS_R/<subset>/<reader>/<chapter>/<reader>_<chapter>_<para>_<sent>.wav and
the .normalized.txt beside each wav (the text). train is the union of --train_subsets
(train-clean-100 by default; add train-clean-360 for more), dev is --dev_subset (dev-clean),
test is --test_subset (test-clean); the subsets have disjoint readers. Test utterances are
prompted with another utterance of their reader (prompt.scp, prompt_text).

Readers' genders (utt2gender) come from LibriTTS_R/speakers.tsv (part of doc.tar.gz on
openslr.org/141; ``READER<tab>GENDER<tab>SUBSET<tab>NAME``) or, failing that, a LibriSpeech-style
LibriTTS_R/SPEAKERS.txt (``ID | SEX | SUBSET | MINUTES | NAME``, ';' comments); with neither,
utt2gender is not written.

Utterance ids are the corpus ids with the first '_' made '-' (19_198_000000_000000 ->
19-198_000000_000000): with '_' after the reader, reader 200 would sort after 2002 by
utterance but before it by speaker, which Kaldi-style data dirs forbid.

Usage: local/prepare_data.py --db_dir downloads --data_dir data [--fs 16000]
           [--train_subsets train-clean-100 [train-clean-360 ...]] [--dev_subset dev-clean]
           [--test_subset test-clean]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ttsrl.data.corpus import (
    CorpusError,
    SkipReport,
    Utterance,
    audio_durations,
    check_utterances,
    clean_text,
    pick_prompts,
    run_script,
    wav_spec,
    write_data_dir,
)

NATIVE_FS = 24000
SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
           "test-clean", "test-other")
logger = logging.getLogger("prepare_data")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="folder holding LibriTTS_R/")
    p.add_argument("--data_dir", required=True, help="where data/{train,dev,test} are written")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of the data dirs")
    p.add_argument("--train_subsets", nargs="+", default=["train-clean-100"], choices=SUBSETS)
    p.add_argument("--dev_subset", default="dev-clean", choices=SUBSETS)
    p.add_argument("--test_subset", default="test-clean", choices=SUBSETS)
    return p


def read_genders(top: Path) -> tuple[dict[str, str], Path] | None:
    """``({reader: "f"|"m"}, source file)`` from speakers.tsv or SPEAKERS.txt (at the top, or
    inside a subset folder as some copies have it), None without either."""
    candidates = [top / "speakers.tsv", top / "SPEAKERS.txt", *sorted(top.glob("*/SPEAKERS.txt"))]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None
    sep = "\t" if path.suffix == ".tsv" else "|"
    genders = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = [x.strip() for x in line.split(sep)]
            if line.startswith(";") or not line.strip() or not fields[0].isdigit():
                continue  # comments (SPEAKERS.txt) and the header (speakers.tsv)
            if len(fields) < 2 or fields[1].upper() not in ("F", "M"):
                raise ValueError(f"{path}:{lineno}: expected a reader id and a gender F or M")
            genders[fields[0]] = fields[1].lower()
    return genders, path


def read_subset(top: Path, subset: str, fs: int, genders: dict[str, str] | None,
                gender_file: str, skipped: SkipReport) -> tuple[list[Utterance], dict[str, Path]]:
    """The usable utterances of a subset and their source wavs."""
    folder = top / subset
    if not folder.is_dir():
        raise CorpusError(
            f"LibriTTS-R {subset} not found: expected {folder}/<reader>/<chapter>/"
            "<reader>_<chapter>_<para>_<sent>.wav with .normalized.txt beside (point --db_dir at the "
            "folder holding LibriTTS_R, or pass --download true)"
        )
    utts, wavs = [], {}
    for chapter_dir in sorted(p for p in folder.glob("*/*") if p.is_dir()):
        reader, chapter = chapter_dir.parent.name, chapter_dir.name
        stems = {p.name[: -len(".normalized.txt")] for p in chapter_dir.glob("*.normalized.txt")}
        stems |= {p.stem for p in chapter_dir.glob("*.wav")}
        for cid in sorted(stems):
            wav, txt = chapter_dir / f"{cid}.wav", chapter_dir / f"{cid}.normalized.txt"
            if not cid.startswith(f"{reader}_{chapter}_"):
                raise ValueError(f"{wav}: the name does not start with {reader}_{chapter}_")
            utt = cid.replace("_", "-", 1)
            if not wav.is_file():
                skipped.add("without a wav", utt)
                continue
            if not txt.is_file():
                skipped.add("without a .normalized.txt", utt)
                continue
            text = clean_text(txt.read_text(encoding="utf-8"))
            if not text:
                skipped.add("with an empty text", utt)
                continue
            labels = {"lang": "en"}
            if genders is not None:
                if reader not in genders:
                    skipped.add(f"of a reader missing from {gender_file}", utt)
                    continue
                labels["gender"] = genders[reader]
            utts.append(Utterance(utt, reader, wav_spec(wav, fs, NATIVE_FS), text, labels))
            wavs[utt] = wav
    if not utts:
        raise CorpusError(f"no usable utterance in {folder}")
    return utts, wavs


def prepare(args: argparse.Namespace) -> None:
    top = Path(args.db_dir).resolve() / "LibriTTS_R"
    data_dir = Path(args.data_dir)
    found = read_genders(top)
    if found is None:
        genders, gender_file = None, ""
        logger.warning("neither %s nor %s exists: utt2gender is not written (speakers.tsv comes with "
                       "doc.tar.gz of https://www.openslr.org/141)", top / "speakers.tsv", top / "SPEAKERS.txt")
    else:
        genders, path = found
        gender_file = path.name
        logger.info("genders of %d readers from %s", len(genders), path)
    given = [*dict.fromkeys(args.train_subsets), args.dev_subset, args.test_subset]
    if len(set(given)) != len(given):
        raise ValueError(f"a subset cannot be in two sets: train {args.train_subsets}, "
                         f"dev {args.dev_subset}, test {args.test_subset}")
    skipped = SkipReport()
    sets: dict[str, list[Utterance]] = {}
    wavs: dict[str, Path] = {}
    for name, subsets in (("train", args.train_subsets), ("dev", [args.dev_subset]),
                          ("test", [args.test_subset])):
        sets[name] = []
        for subset in dict.fromkeys(subsets):
            utts, subset_wavs = read_subset(top, subset, args.fs, genders, gender_file, skipped)
            sets[name] += utts
            wavs.update(subset_wavs)
    total = sum(map(len, sets.values())) + len(skipped)
    skipped.log(total, "LibriTTS-R")
    skipped.write(data_dir / "local" / "skipped_utts")
    check_utterances([u for utts in sets.values() for u in utts])
    prompts = {"test": pick_prompts(sets["test"], audio_durations({u.utt: wavs[u.utt] for u in sets["test"]}))}
    for name, utts in sets.items():
        write_data_dir(data_dir / name, utts, prompts.get(name))


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    return run_script(lambda: prepare(args))


if __name__ == "__main__":
    sys.exit(main())
