#!/usr/bin/env python3
"""Render exp/results.json (every model x test set) as exp/RESULTS.md: one table per test set.

Usage:
    python -m ttsrl.bin.make_report --results exp/results.json --out exp/RESULTS.md
    python -m ttsrl.bin.make_report --results exp/results.json --out exp/RESULTS.md --command "./run.sh --stage 9"
"""

import argparse
import logging
import shlex
import sys

from ttsrl.data.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, help="the results store (exp/results.json)")
    p.add_argument("--out", required=True, help="the markdown to write (exp/RESULTS.md)")
    p.add_argument("--command", help="command shown in the header (default: this command line)")
    p.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.score.results import write_results_md

    argv = sys.argv[1:] if argv is None else argv
    command = args.command or "python -m ttsrl.bin.make_report " + shlex.join(argv)
    try:
        write_results_md(args.results, args.out, command=command)
    except (ValueError, OSError) as e:  # ResultsError names the file and the entry
        print(f"make_report: error: {e}", file=sys.stderr)
        return 1
    logging.info("wrote %s from %s", args.out, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
