#!/usr/bin/env python3
"""Write a subset of a training set with zero-shot prompts: the texts the LM is aligned on.

Alignment (stages 5-7) samples candidates for training texts in the same zero-shot setting as
the test sets: each utterance gets ``prompt.scp``/``prompt_text`` pointing to another utterance
of its speaker (``ttsrl.data.corpus.pick_prompts`` over the *whole* source set, preferring
3-10 s prompts when ``utt2dur`` exists). The subset is spread evenly over the sorted utterances,
so every speaker is represented; it is deterministic.

Usage:
    python -m ttsrl.bin.make_prompted_subset --num_utts 300 data/train data/train_align
"""

import argparse
import logging
import sys
from collections import Counter

from ttsrl.data.cli import run_cli
from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src_dir", help="the source data directory (e.g. data/train)")
    p.add_argument("out_dir", help="the output data directory (e.g. data/train_align)")
    p.add_argument("--num_utts", type=int, required=True, help="utterances in the subset (all when larger)")
    p.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return p


def make_prompted_subset(src_dir: str, out_dir: str, num_utts: int):
    from ttsrl.data.corpus import Utterance, pick_prompts
    from ttsrl.data.datadir import DataDir, DataDirError

    if num_utts < 1:
        raise DataDirError(f"--num_utts must be >= 1, got {num_utts}")
    d = DataDir.load(src_dir)
    if d.segments is not None:
        raise DataDirError(f"{src_dir}: segments are not supported here (prompts are whole wav.scp entries)")
    per_spk = Counter(d.utt2spk[u] for u in d.utts)
    utts = [u for u in d.utts if per_spk[d.utt2spk[u]] > 1]  # a lone utterance has no prompt
    if len(utts) < len(d.utts):
        logging.warning("%s: %d utterances of speakers with a single utterance left out (no prompt for them)",
                        src_dir, len(d.utts) - len(utts))
    if not utts:
        raise DataDirError(f"{src_dir}: no speaker has two utterances, so none can be prompted")
    step = max(len(utts) / num_utts, 1.0)
    chosen = sorted({utts[int(i * step)] for i in range(min(num_utts, len(utts)))})
    everyone = [Utterance(u, d.utt2spk[u], d.wav_scp[u], d.text[u]) for u in utts]
    durs = d.labels.get("utt2dur")
    prompts = pick_prompts(everyone, {u: float(x) for u, x in durs.items()} if durs else None)
    sub = d.subset(chosen)
    sub.extra["prompt.scp"] = {u: prompts[u].wav for u in chosen}
    sub.extra["prompt_text"] = {u: prompts[u].text for u in chosen}
    sub.write(out_dir)
    return sub


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    return run_cli("make_prompted_subset", lambda: make_prompted_subset(args.src_dir, args.out_dir, args.num_utts))


if __name__ == "__main__":
    sys.exit(main())
