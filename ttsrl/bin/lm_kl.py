#!/usr/bin/env python3
"""Token-average KL(aligned LM || reference LM) on a test set (the ``kl`` column of the results).

Both LMs read the set's ground-truth speech tokens after its zero-shot prompt (with --lm_prompt
false: without it); see ttsrl.score.lm_kl. Merged into ``--results`` as
``results[model_tag][test_set]["kl"]`` when given, with ``train_min``: the alignment training
time, the sum of ``train_seconds`` of the ``--train_metrics`` files (every iteration of an
iterative method), in minutes.

Usage:
    python -m ttsrl.bin.lm_kl --lm exp/dpo/lm/model.pt --ref_lm exp/base/lm/model.pt \\
        --token_dir dump/tokens/test --results exp/results.json --model_tag dpo --test_set test \\
        --train_metrics exp/dpo/lm/metrics.json
"""
import argparse
import json
import os

from ttsrl.utils.cli import exit_on_bad_input, setup_logging
from ttsrl.utils.config import str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", required=True, help="model.pt of the aligned LM")
    p.add_argument("--ref_lm", required=True, help="model.pt of the reference (base) LM")
    p.add_argument("--token_dir", required=True, help="dump/tokens/<set>")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--lm_prompt", type=str2bool, default=True,
                   help="both LMs read the set's zero-shot prompts (false: the text and speech alone)")
    p.add_argument("--results", default=None, help="exp/results.json to merge the value into")
    p.add_argument("--model_tag", default=None, help="model tag in --results")
    p.add_argument("--test_set", default=None, help="test set name in --results (default: the token dir's name)")
    p.add_argument("--train_metrics", nargs="*", default=[],
                   help="metrics.json files of the model's alignment training (train_seconds summed into train_min)")
    p.add_argument("--num_threads", type=int, default=0)
    return p


def main(argv=None) -> int:
    setup_logging("INFO")
    args = get_parser().parse_args(argv)
    import torch

    from ttsrl.models.codec_lm import load_codec_lm
    from ttsrl.score.lm_kl import lm_kl, train_minutes
    from ttsrl.score.results import update_results

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    if args.results and not args.model_tag:
        raise SystemExit("lm_kl: --results needs --model_tag")
    out = exit_on_bad_input(lambda: lm_kl(load_codec_lm(args.lm), load_codec_lm(args.ref_lm), args.token_dir,
                                          args.batch_size, args.lm_prompt))
    if args.train_metrics:
        out["train_min"] = train_minutes(args.train_metrics)
    if args.results:
        test_set = args.test_set or os.path.basename(os.path.normpath(args.token_dir))
        update_results(args.results, args.model_tag, test_set,
                       {k: round(out[k], 5) for k in ("kl", "train_min") if k in out})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
