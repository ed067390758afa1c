#!/usr/bin/env python3
"""Check a Kaldi data directory; print every problem and exit 1 if there is any.

Usage:
    python -m ttsrl.bin.validate_data_dir data/train
    python -m ttsrl.bin.validate_data_dir --no_audio --required "text utt2spk" data/test_seedtts
    python -m ttsrl.bin.validate_data_dir --sample_rate 24000 data/train
    python -m ttsrl.bin.validate_data_dir --kaldi_strict false data/train
The checks are listed in ttsrl/data/validate.py. --kaldi_strict (default true) adds the rules of
Kaldi's utils/validate_data_dir.sh: spk2utt present and in utt2spk's order, utterance ids that
sort speakers together (speaker-prefixed), a newline at the end of every file, no Unicode
spaces but the ASCII space in text.
"""

import argparse
import sys

from ttsrl.data.cli import run_cli, split_names
from ttsrl.utils.cli import LOG_LEVELS, setup_logging
from ttsrl.utils.config import str2bool


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", help="the data directory")
    parser.add_argument("--sample_rate", "--sample-rate", type=int, default=16000,
                        help="expected sample rate of the audio; 0 skips the rate check (default: %(default)s)")
    parser.add_argument("--no_audio", "--no-audio", action="store_true", help="skip the audio checks")
    parser.add_argument("--required", default="wav.scp text utt2spk",
                        help="files that must exist, space-separated (default: %(default)s)")
    parser.add_argument("--kaldi_strict", "--kaldi-strict", type=str2bool, default=True,
                        help="also fail where Kaldi's validate_data_dir.sh fails (default: %(default)s)")
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.data.datadir import DataDirError
    from ttsrl.data.validate import validate_data_dir

    def run() -> None:
        problems = validate_data_dir(
            args.data_dir,
            sample_rate=args.sample_rate or None,
            check_audio=not args.no_audio,
            required=split_names(args.required),
            kaldi_strict=args.kaldi_strict,
        )
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            raise DataDirError(f"{args.data_dir}: {len(problems)} problem(s)")
        print(f"validate_data_dir: {args.data_dir}: OK", file=sys.stderr)

    return run_cli("validate_data_dir", run)

if __name__ == "__main__":
    sys.exit(main())
