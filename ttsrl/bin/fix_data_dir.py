#!/usr/bin/env python3
"""Make a data directory consistent in place: keep utterances present in every file, sort,
regenerate spk2utt. Originals go to <dir>/.backup/, dropped ids to <dir>/.backup/dropped.txt
(a second fix of the same dir: .backup.2/, then .backup.3/ ..., the first originals are kept).

Usage:
    python -m ttsrl.bin.fix_data_dir data/train
    python -m ttsrl.bin.fix_data_dir --required "text utt2spk" data/test_seedtts
"""

import argparse
import logging
import sys

from ttsrl.data.cli import run_cli, split_names
from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", help="the data directory (modified in place)")
    parser.add_argument("--required", default="wav.scp text utt2spk",
                        help="files that must exist, space-separated (default: %(default)s)")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.data.ops import fix_data_dir

    def run() -> None:
        report = fix_data_dir(args.data_dir, required=split_names(args.required))
        logging.info("%s: %d kept, %d dropped", args.data_dir, report.kept, report.num_dropped)

    return run_cli("fix_data_dir", run)


if __name__ == "__main__":
    sys.exit(main())
