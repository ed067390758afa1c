#!/usr/bin/env python3
"""Convert a Seed-TTS-Eval list (utt|prompt_text|prompt_wav|infer_text[|gt_wav]) to a data dir
with text, utt2spk, spk2utt, prompt.scp, prompt_text and (given gt wavs) wav.scp.

Usage:
    python -m ttsrl.bin.seedtts_to_data_dir seedtts_testset/en/meta.lst data/test_seedtts_en
    python -m ttsrl.bin.seedtts_to_data_dir --no_check_wavs meta.lst data/test_x
"""

import argparse
import sys

from ttsrl.data.cli import run_cli
from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("list_file", help="the Seed-TTS-Eval list (meta.lst)")
    parser.add_argument("out_dir", help="the output data directory")
    parser.add_argument("--no_check_wavs", "--no-check-wavs", action="store_true",
                        help="do not check that the prompt and ground-truth wavs exist")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.data.seedtts import seedtts_to_data_dir

    return run_cli("seedtts_to_data_dir", lambda: seedtts_to_data_dir(
        args.list_file, args.out_dir, check_wavs=not args.no_check_wavs))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
