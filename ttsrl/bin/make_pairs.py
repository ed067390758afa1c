#!/usr/bin/env python3
"""Build preference pairs (DPO) or a best-of-N list (RAFT) from scored candidates.

Usage: python -m ttsrl.bin.make_pairs --samples_dir exp/base/samples/train --out_dir exp/base/pairs/train \\
           [--mode best_worst|golden|best] [--rewards <samples_dir>/rewards.tsv] [--margin 0.1] \\
           [--token_dir dump/tokens/train]   (golden mode: the ground-truth speech.scp)
Writes <out_dir>/pairs.jsonl (one {"utt", "chosen", "rejected", "chosen_reward", "rejected_reward",
"chosen_key", "rejected_key", "mode"} per line), pairs_summary.json (counts of pairs and of dropped
margin / tie / identical / single, reward mean and std) and rewards_hist.png. See ttsrl.align.pairs.
"""
import argparse

from ttsrl.utils.cli import setup_logging


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples_dir", required=True, help="output of ttsrl.bin.sample_lm (tokens.scp)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--mode", default="best_worst", choices=["best_worst", "golden", "best"],
                   help="best_worst: best vs worst candidate; golden: ground truth vs worst (or c0); best: best-of-N")
    p.add_argument("--rewards", default=None, help="rewards.tsv of ttsrl.bin.score_candidates "
                   "(default: <samples_dir>/rewards.tsv; optional in golden mode)")
    p.add_argument("--reward_column", default="reward", help="the rewards.tsv column that ranks candidates")
    p.add_argument("--margin", type=float, default=0.0, help="best_worst: drop pairs whose reward gap is below this")
    p.add_argument("--token_dir", default=None, help="golden mode: the set's token dir (speech.scp)")
    return p


def main(argv=None):
    setup_logging("INFO")
    args = get_parser().parse_args(argv)
    from ttsrl.align.pairs import make_pairs

    return make_pairs(args.samples_dir, args.out_dir, args.mode, args.rewards, args.token_dir, args.margin,
                      args.reward_column)


if __name__ == "__main__":
    main()
