#!/usr/bin/env python3
"""Downloads LJSpeech-1.1 (2.6 GB) and extracts it into <db_dir>/LJSpeech-1.1 unless it is there.

Usage: local/download.py --db_dir downloads [--url URL]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ttsrl.data.corpus import extract, fetch, run_script

URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
# checksums of the official archives, by file name (a mirror serves the same file)
CHECKSUMS = {"LJSpeech-1.1.tar.bz2": "sha256:be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"}
LAYOUT = "<db_dir>/LJSpeech-1.1/metadata.csv and <db_dir>/LJSpeech-1.1/wavs/LJ001-0001.wav ..."


def download(db_dir: Path, url: str) -> None:
    corpus = db_dir / "LJSpeech-1.1"
    if (corpus / "metadata.csv").is_file():
        logging.info("%s is already there; not downloading", corpus)
        return
    archive = fetch(url, db_dir, CHECKSUMS, LAYOUT.replace("<db_dir>", str(db_dir)))
    extract(archive, db_dir)
    if not (corpus / "metadata.csv").is_file():
        raise ValueError(f"{archive} did not contain LJSpeech-1.1/metadata.csv")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="where the archive is downloaded and extracted")
    p.add_argument("--url", default=URL, help="the archive (a mirror or a local file:// copy)")
    args = p.parse_args(argv)
    return run_script(lambda: download(Path(args.db_dir), args.url))


if __name__ == "__main__":
    sys.exit(main())
