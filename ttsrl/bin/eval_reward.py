#!/usr/bin/env python3
"""Per-head metrics of a trained reward model on the golden tokens of a set (stage 6).

Reads a token dir (``ctc_text``, the transcripts in the speech tokenizer's CTC units, or ``text``
for a token dir without it; ``speech.scp``; stage 3) and the labels of its data dir
(``utt2emo``, ``utt2gender``, ``utt2age``, ``utt2quality``) and reports the reward model's
greedy CTC CER of the text head (percent), emotion / gender / age accuracy, quality
correlation, ``text_logprob`` and ``text_rank_acc`` (see
:func:`ttsrl.tasks.reward.evaluate_reward`). ``--metrics_json`` merges them as
``<metric>_<set>``; for ``--primary_test_set`` also as the headline keys (``ctc_cer``,
``emo_acc`` ...), with ``metrics_set`` naming the set. The CER decodes with the reward
model's text vocabulary: ``--token_list``, by default the ``tokens.txt`` that train_reward
copied beside the model (older reward dirs: the token dir's CTC list, see
:func:`ttsrl.data.token_dataset.ctc_token_list`).

Usage:
    python -m ttsrl.bin.eval_reward --reward exp/reward --token_dir dump/tokens/test --data_dir data/test \\
        --metrics_json exp/reward/metrics.json --primary_test_set test
"""
import argparse
import json
import logging
import os

logger = logging.getLogger("ttsrl.eval_reward")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward", required=True, help="reward model dir (model.pt) or its model.pt")
    p.add_argument("--token_dir", required=True, help="dump/tokens/<set>: golden speech tokens and text ids")
    p.add_argument("--data_dir", required=True, help="the set's data dir (label files)")
    p.add_argument("--set_name", default=None, help="name in metrics keys (default: the token dir's name)")
    p.add_argument("--token_list", default=None,
                   help="text token list of the reward model (default: tokens.txt beside the model, else the token "
                        "dir's CTC list)")
    p.add_argument("--metrics_json", default=None, help="merge <metric>_<set> into this file")
    p.add_argument("--primary_test_set", default="test", help="the set whose metrics are also the headline keys")
    p.add_argument("--max_tokens", type=int, default=4000, help="padded speech tokens per batch")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def run(args: argparse.Namespace) -> dict:
    import torch

    from ttsrl.data.token_dataset import ctc_token_list
    from ttsrl.models.reward import load_reward_model
    from ttsrl.tasks.reward import RewardDataset, build_text_decoder, collate_reward, evaluate_reward
    from ttsrl.text.tokenizer import read_token_list
    from ttsrl.train.sampler import build_loader
    from ttsrl.utils.fileio import write_metrics

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    model = load_reward_model(args.reward)
    ds = RewardDataset(args.token_dir, args.data_dir, model.config.label_names)
    loader = build_loader(ds, ds.lengths, args.max_tokens, collate_reward, shuffle=False)
    reward_dir = args.reward if os.path.isdir(args.reward) else os.path.dirname(os.path.abspath(args.reward))
    token_list = args.token_list or os.path.join(reward_dir, "tokens.txt")
    if not os.path.isfile(token_list) and not args.token_list:  # a reward dir written before it kept its list
        token_list = ctc_token_list(args.token_dir)
    size = len(read_token_list(token_list))
    if size != model.config.text_vocab_size:
        raise ValueError(f"{token_list} has {size} tokens, the reward model's text vocabulary "
                         f"{model.config.text_vocab_size}")
    decode = build_text_decoder(token_list)
    stats = evaluate_reward(model, loader, decode)
    name = args.set_name or os.path.basename(os.path.normpath(args.token_dir))
    per_set = {f"{k}_{name}": v for k, v in stats.items()}
    metrics = dict(per_set)
    if name == args.primary_test_set:
        metrics.update({k: v for k, v in stats.items() if k != "utts"}, metrics_set=name)
    if args.metrics_json:
        write_metrics(args.metrics_json, metrics)
    logger.info("%s: %s", args.token_dir, json.dumps(stats))
    print(json.dumps(per_set))
    return metrics


def main(argv: list[str] | None = None) -> dict:
    from ttsrl.utils.cli import exit_on_bad_input, setup_logging

    args = get_parser().parse_args(argv)
    setup_logging("INFO")
    return exit_on_bad_input(lambda: run(args))


if __name__ == "__main__":
    main()
