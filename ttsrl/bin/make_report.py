#!/usr/bin/env python3
"""Render exp/results.json (every model x test set) as exp/RESULTS.md: one table per test set;
with --html_dir, also the report page <html_dir>/index.html.

The page is one self-contained folder (inline CSS and SVG, no script, no network). Per test set:
the metrics in one table per group (intelligibility; voice, prosody and quality; emotion; cost),
each column marked lower- or higher-is-better, the best method highlighted, every value with
its 95 % confidence interval over utterances and its change from base; trade-off scatters (CER
vs KL to the base LM, SIM vs CER); a dot plot of the headline metrics with error bars; the
per-utterance CER boxplot; --num_examples utterances (spread evenly over the sorted ids, the
same every run) as rows of audio players: prompt, ground truth and every model, with the texts;
what was missing, collapsed. Then the metrics.json of the tokenizer, reward model (with its
Spearman correlation to the judge) and judges, and the training curves of every trained model.
The audio is copied into <html_dir>/audio/, so the folder can be zipped. Inputs follow the
layout of stage 9 (see ttsrl/score/report.py): texts, prompts and ground-truth audio from
<data_dir>/<set>/, a model's audio from <exp_dir>/<model>/decode/<set>/wav.scp, its scores from
.../score/per_utt.tsv (the ground truth's from <exp_dir>/ground_truth/<set>/score/per_utt.tsv).
What is missing is logged and listed on the page.

Usage:
    python -m ttsrl.bin.make_report --results exp/results.json --out exp/RESULTS.md
    python -m ttsrl.bin.make_report --results exp/results.json --out exp/RESULTS.md --command "./run.sh --stage 9"
    python -m ttsrl.bin.make_report --results exp/results.json --out exp/RESULTS.md \\
        --html_dir exp/report --exp_dir exp --data_dir data --num_examples 4
"""

import argparse
import logging
import shlex
import sys

from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, help="the results store (exp/results.json)")
    p.add_argument("--out", required=True, help="the markdown to write (exp/RESULTS.md)")
    p.add_argument("--command", help="command shown in the header (default: this command line)")
    p.add_argument("--html_dir", help="also write the HTML report <html_dir>/index.html (exp/report)")
    p.add_argument("--exp_dir", help="the models' decode and score dirs (default: the folder of --results)")
    p.add_argument("--data_dir", default="data", help="folder of the test sets' data dirs (texts, prompts)")
    p.add_argument("--num_examples", type=int, default=4, help="utterances with audio players per test set")
    p.add_argument("--test_sets", help="space- or comma-separated test sets of the page (default: all)")
    p.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.score.report import write_html_report
    from ttsrl.score.results import write_results_md

    argv = sys.argv[1:] if argv is None else argv
    command = args.command or "python -m ttsrl.bin.make_report " + shlex.join(argv)
    if args.num_examples < 0:
        print("make_report: error: --num_examples must be >= 0", file=sys.stderr)
        return 1
    try:
        write_results_md(args.results, args.out, command=command)
        logging.info("wrote %s from %s", args.out, args.results)
        if args.html_dir:
            sets = args.test_sets.replace(",", " ").split() if args.test_sets else None
            report = write_html_report(args.results, args.html_dir, exp_dir=args.exp_dir, data_dir=args.data_dir,
                                       num_examples=args.num_examples, test_sets=sets, command=command)  # fmt: skip
            logging.info("wrote %s (%d test set(s), %d missing or unreadable input(s) listed in it)",
                         report.index, len(report.sets), len(report.problems))  # fmt: skip
    except (ValueError, OSError) as e:  # ResultsError names the file and the entry
        print(f"make_report: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
