#!/usr/bin/env python3
"""Write a subset of a data directory (labels, segments and wav.scp kept consistent).

Usage:
    python -m ttsrl.bin.subset_data_dir --first 100 data/train data/train_100
    python -m ttsrl.bin.subset_data_dir --last 10 data/train data/train_last10
    python -m ttsrl.bin.subset_data_dir --shortest 50 data/train data/train_short
    python -m ttsrl.bin.subset_data_dir --utt_list ids.txt data/train data/train_sel
    python -m ttsrl.bin.subset_data_dir --spk_list spks.txt data/train data/train_spk
"""

import argparse
import sys

from ttsrl.data.cli import run_cli
from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src_dir", help="the source data directory")
    parser.add_argument("out_dir", help="the output data directory")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--first", type=int, help="the first N utterances (sorted order)")
    how.add_argument("--last", type=int, help="the last N utterances (sorted order)")
    how.add_argument("--shortest", type=int, help="the N shortest utterances")
    how.add_argument("--utt_list", "--utt-list", help="file of utterance ids (first field)")
    how.add_argument("--spk_list", "--spk-list", help="file of speaker ids (first field)")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.data.ops import subset_data_dir

    return run_cli("subset_data_dir", lambda: subset_data_dir(
        args.src_dir, args.out_dir, first=args.first, last=args.last, shortest=args.shortest,
        utt_list=args.utt_list, spk_list=args.spk_list,
    ))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
