#!/usr/bin/env python3
"""Downloads the LibriTTS-R subsets that are absent (openslr.org/141) and extracts them into
<db_dir>/LibriTTS_R/<subset>, with doc.tar.gz (speakers.tsv, the readers' genders).

Usage: local/download.py --db_dir downloads --subsets train-clean-100 dev-clean test-clean
           [--base_url https://www.openslr.org/resources/141]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ttsrl.data.corpus import extract, fetch, run_script

BASE_URL = "https://www.openslr.org/resources/141"
# md5 of the archives as published on openslr.org/141, by file name
CHECKSUMS = {
    "dev_clean.tar.gz": "md5:2c1f5312914890634cc2d15783032ff3",
    "dev_other.tar.gz": "md5:62d3a80ad8a282b6f31b3904f0507e4f",
    "test_clean.tar.gz": "md5:4d373d453eb96c0691e598061bbafab7",
    "test_other.tar.gz": "md5:dbc0959d8bdb6d52200595cabc9995ae",
    "train_clean_100.tar.gz": "md5:6df668d8f5f33e70876bfa33862ad02b",
    "train_clean_360.tar.gz": "md5:382eb3e64394b3da6a559f864339b22c",
    "train_other_500.tar.gz": "md5:a37a8e9f4fe79d20601639bf23d1add8",
}


def download(db_dir: Path, subsets: list[str], base_url: str) -> None:
    top = db_dir / "LibriTTS_R"
    layout = f"{top}/<subset>/<reader>/<chapter>/*.wav"
    for subset in subsets:
        if (top / subset).is_dir():
            logging.info("%s is already there; not downloading", top / subset)
            continue
        archive = fetch(f"{base_url}/{subset.replace('-', '_')}.tar.gz", db_dir, CHECKSUMS, layout)
        extract(archive, db_dir)
        if not (top / subset).is_dir():
            raise ValueError(f"{archive} did not contain LibriTTS_R/{subset}")
    if not (top / "speakers.tsv").is_file():
        extract(fetch(f"{base_url}/doc.tar.gz", db_dir, CHECKSUMS, f"{top}/speakers.tsv"), db_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db_dir", required=True, help="where the archives are downloaded and extracted")
    p.add_argument("--subsets", nargs="+", required=True, help="e.g. train-clean-100 dev-clean test-clean")
    p.add_argument("--base_url", default=BASE_URL, help="the folder of the archives (a mirror, or file://)")
    args = p.parse_args(argv)
    return run_script(lambda: download(Path(args.db_dir), args.subsets, args.base_url.rstrip("/")))


if __name__ == "__main__":
    sys.exit(main())
