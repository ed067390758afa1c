#!/usr/bin/env python3
"""Writes the data dirs train, dev and test of LJSpeech-1.1 (one female speaker, 13,100 clips).

Reads <db_dir>/LJSpeech-1.1/metadata.csv (``id|raw text|normalized text``, no header) and
<db_dir>/LJSpeech-1.1/wavs/<id>.wav (22,050 Hz); the text is the normalized column. The split
follows the metadata order: the last --n_test clips are test, the --n_dev before them dev, the
rest train. Test utterances are prompted with another test clip (prompt.scp, prompt_text).

Usage: local/prepare_data.py --db_dir downloads --data_dir data [--fs 16000] [--n_dev 100] [--n_test 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ttsrl.data.corpus import (
    CorpusError,
    SkipReport,
    Utterance,
    audio_durations,
    clean_text,
    pick_prompts,
    run_script,
    wav_spec,
    write_data_dir,
)

NATIVE_FS = 22050
SPEAKER = "LJ"
LABELS = {"lang": "en", "gender": "f"}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="folder holding LJSpeech-1.1/")
    p.add_argument("--data_dir", required=True, help="where data/{train,dev,test} are written")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of the data dirs")
    p.add_argument("--n_dev", type=int, default=100, help="clips in dev")
    p.add_argument("--n_test", type=int, default=100, help="clips in test (the last of metadata.csv)")
    return p


def read_corpus(corpus: Path, fs: int, skipped: SkipReport) -> list[tuple[Utterance, Path]]:
    """The usable clips in metadata order, with their source wav."""
    metadata = corpus / "metadata.csv"
    if not metadata.is_file():
        raise CorpusError(
            f"LJSpeech-1.1 not found: expected {metadata} and {corpus / 'wavs'}/<id>.wav "
            "(point --db_dir at the folder holding LJSpeech-1.1, or pass --download true)"
        )
    out, seen = [], set()
    with open(metadata, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("|")
            if len(fields) != 3:
                raise ValueError(f"{metadata}:{lineno}: expected 'id|raw text|normalized text'")
            utt, _, text = fields[0].strip(), fields[1], clean_text(fields[2])
            if utt in seen:
                raise ValueError(f"{metadata}:{lineno}: duplicate id {utt}")
            seen.add(utt)
            wav = corpus / "wavs" / f"{utt}.wav"
            if not text:
                skipped.add("with an empty normalized text", utt)
            elif not wav.is_file():
                skipped.add("without a wav", utt)
            else:
                out.append((Utterance(utt, SPEAKER, wav_spec(wav, fs, NATIVE_FS), text, LABELS), wav))
    return out


def prepare(args: argparse.Namespace) -> None:
    corpus = Path(args.db_dir).resolve() / "LJSpeech-1.1"
    data_dir = Path(args.data_dir)
    skipped = SkipReport()
    clips = read_corpus(corpus, args.fs, skipped)
    total = len(clips) + len(skipped)
    skipped.log(total, "LJSpeech-1.1")
    skipped.write(data_dir / "local" / "skipped_utts")
    if min(args.n_dev, args.n_test) < 1 or args.n_dev + args.n_test >= len(clips):
        raise ValueError(f"--n_dev {args.n_dev} and --n_test {args.n_test} must be >= 1 and leave "
                         f"training clips among the {len(clips)} usable ones")
    n_train = len(clips) - args.n_dev - args.n_test
    sets = {
        "train": clips[:n_train],
        "dev": clips[n_train : n_train + args.n_dev],
        "test": clips[n_train + args.n_dev :],
    }
    test = [u for u, _ in sets["test"]]
    prompts = {"test": pick_prompts(test, audio_durations({u.utt: wav for u, wav in sets["test"]}))}
    for name, members in sets.items():
        write_data_dir(data_dir / name, [u for u, _ in members], prompts.get(name))


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    return run_script(lambda: prepare(args))


if __name__ == "__main__":
    sys.exit(main())
