#!/usr/bin/env python3
"""Combine data directories into one; fails on utterance ids found in two inputs.

Label files (utt2*) and prompt files are kept when every input has them.

Usage:
    python -m ttsrl.bin.combine_data data/train_all data/train_a data/train_b
"""

import argparse
import sys

from ttsrl.data.cli import run_cli
from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="the combined data directory")
    parser.add_argument("src_dirs", nargs="+", help="the data directories to combine")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.data.ops import combine_data

    return run_cli("combine_data", lambda: combine_data(args.out_dir, *args.src_dirs))


if __name__ == "__main__":
    sys.exit(main())
