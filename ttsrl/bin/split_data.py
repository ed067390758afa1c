#!/usr/bin/env python3
"""Split a data directory into <dir>/split<n>/{1..n} for parallel jobs (JOB=1:n).

Parts are contiguous in sorted order with near-equal utterance counts; --per_spk keeps
every speaker in one part. The part directories are printed, one per line.

Usage:
    python -m ttsrl.bin.split_data data/train 4              # data/train/split4/{1,2,3,4}
    python -m ttsrl.bin.split_data --per_spk data/train 4
"""

import argparse
import sys

from ttsrl.data.cli import run_cli
from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", help="the data directory")
    parser.add_argument("num_parts", type=int, help="number of parts")
    parser.add_argument("--per_spk", "--per-spk", action="store_true", help="keep speakers whole")
    parser.add_argument("--per_utt", "--per-utt", dest="per_spk", action="store_false",
                        help="split per utterance (the default; accepted for Kaldi compatibility)")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.data.ops import split_data

    def run() -> None:
        for part in split_data(args.data_dir, args.num_parts, per_spk=args.per_spk):
            print(part)

    return run_cli("split_data", run)


if __name__ == "__main__":
    sys.exit(main())
