#!/usr/bin/env python3
"""Downloads VCTK-Corpus-0.92.zip (11 GB, Edinburgh DataShare) and extracts it into
<db_dir>/VCTK-Corpus-0.92 unless that holds speaker-info.txt already.

Usage: local/download.py --db_dir downloads [--url URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ttsrl.data.corpus import extract, fetch, run_script

URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"
CHECKSUMS = {"VCTK-Corpus-0.92.zip": "md5:8a6ba2946b36fcbef0212cad601f4bfa"}


def download(db_dir: Path, url: str) -> None:
    corpus = db_dir / "VCTK-Corpus-0.92"
    if (corpus / "speaker-info.txt").is_file():
        logging.info("%s is already there; not downloading", corpus)
        return
    layout = f"{corpus}/speaker-info.txt, {corpus}/txt/ and {corpus}/wav48_silence_trimmed/"
    archive = fetch(url, db_dir, CHECKSUMS, layout)
    # The zip holds speaker-info.txt, txt/ and wav48_silence_trimmed/ at its top, without a
    # folder around them; accept a copy repacked with one too.
    extract(archive, corpus)
    nested = corpus / "VCTK-Corpus-0.92"
    if not (corpus / "speaker-info.txt").is_file() and (nested / "speaker-info.txt").is_file():
        for entry in nested.iterdir():
            os.replace(entry, corpus / entry.name)
        nested.rmdir()
    if not (corpus / "speaker-info.txt").is_file():
        raise ValueError(f"{archive} did not contain speaker-info.txt")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="where the archive is downloaded and extracted")
    p.add_argument("--url", default=URL, help="the archive (a mirror or a local file:// copy)")
    args = p.parse_args(argv)
    return run_script(lambda: download(Path(args.db_dir), args.url))


if __name__ == "__main__":
    sys.exit(main())
