#!/usr/bin/env python3
"""Read sampled speech-token candidates with the speech tokenizer's CTC head: the quick proxy of a codec LM.

Every candidate of a samples dir (stage 5: ``tokens.scp``, keys ``<utt>-c<k>``) is transcribed
by the tokenizer's CTC text head (greedy) and scored against the utterance's transcript in the
data dir, as stage 3 scores the golden tokens (``ctc_cer_<set>`` of the tokenizer's metrics).
No synthesis and no judge: seconds for a dev set, so LM configurations can be compared before
anything is decoded. The golden tokens' own CER (``--token_dir``) is the floor of the proxy.

Writes (``--out``, JSON) and prints:
  cer_mean                 mean per-candidate CER (percent)
  cer_corpus               character edits / reference characters over every candidate (percent)
  cer_q10, cer_q50, cer_q90
  len_ratio_q10/_q50/_q90  candidate / golden token length (with --token_dir)
  golden_cer_mean          the same reading of the golden tokens (with --token_dir)
  candidates, utterances, cut (candidates cut at the length bound, from ``finished``)

Usage:
    python -m ttsrl.bin.eval_samples --samples_dir exp/base/samples/dev --data_dir data/dev \\
        --tokenizer_dir exp/tokenizer --token_dir dump/tokens/dev --out exp/base/samples/dev/ctc_cer.json
"""
from __future__ import annotations

import argparse
import json
import logging
import os

logger = logging.getLogger("ttsrl.bin.eval_samples")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples_dir", required=True, help="candidates: tokens.scp (or tokens.<job>.scp), finished")
    p.add_argument("--data_dir", required=True, help="data dir of the sampled set (its text is the reference)")
    p.add_argument("--tokenizer_dir", required=True, help="the speech tokenizer whose CTC head reads the tokens")
    p.add_argument("--token_dir", default=None,
                   help="the set's token dir: golden tokens for the length ratio and the proxy's floor")
    p.add_argument("--out", default=None, help="JSON file of the summary (default: print only)")
    p.add_argument("--batch_size", type=int, default=64, help="candidates per CTC batch")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def summarize(cers: dict, lens: dict | None = None, golden: dict | None = None) -> dict:
    """The summary of per-key ``(errors, chars)`` (and length ratios, golden CERs)."""
    import numpy as np

    rates = np.array([100.0 * e / max(n, 1) for e, n in cers.values()])
    errors = sum(e for e, _ in cers.values())
    chars = sum(n for _, n in cers.values())
    s = {"candidates": len(cers), "cer_mean": round(float(rates.mean()), 3),
         "cer_corpus": round(100.0 * errors / max(chars, 1), 3)}
    for q in (10, 50, 90):
        s[f"cer_q{q}"] = round(float(np.percentile(rates, q)), 3)
    if lens:
        ratios = np.array(list(lens.values()))
        for q in (10, 50, 90):
            s[f"len_ratio_q{q}"] = round(float(np.percentile(ratios, q)), 3)
    if golden:
        s["golden_cer_mean"] = round(float(np.mean([100.0 * e / max(n, 1) for e, n in golden.values()])), 3)
    return s


def run(args: argparse.Namespace) -> dict:
    import torch

    from ttsrl.align.rewards import parse_candidate_key
    from ttsrl.data.arrays import read_scp
    from ttsrl.data.datadir import DataDir, read_kv
    from ttsrl.models.speech_tokenizer import SpeechTokenizer, load_ctc_tokenizer
    from ttsrl.score.headroom import candidates_with_refs, ctc_cers
    from ttsrl.text.tokenizer import encode_texts
    from ttsrl.utils.fileio import atomic_write_text

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    model = SpeechTokenizer.from_pretrained(args.tokenizer_dir)
    ctc_tok = load_ctc_tokenizer(args.tokenizer_dir)
    d = DataDir.load(args.data_dir)
    refs, _ = encode_texts(ctc_tok, d.text)
    seqs, cand_refs = candidates_with_refs(args.samples_dir, refs, args.data_dir)
    with torch.no_grad():
        cers = ctc_cers(model, ctc_tok, seqs, cand_refs, args.batch_size)
        lens = golden = None
        if args.token_dir:
            gold = read_scp(os.path.join(args.token_dir, "speech.scp"))
            utts = sorted({parse_candidate_key(k)[0] for k in seqs})
            lens = {k: len(seqs[k]) / max(len(gold[parse_candidate_key(k)[0]]), 1) for k in seqs}
            golden = ctc_cers(model, ctc_tok, {u: gold[u] for u in utts}, {u: refs[u] for u in utts}, args.batch_size)
    summary = summarize(cers, lens, golden)
    summary["utterances"] = len({parse_candidate_key(k)[0] for k in seqs})
    finished = os.path.join(args.samples_dir, "finished")
    if os.path.isfile(finished):
        summary["cut"] = sum(v == "0" for v in read_kv(finished).values())
    if args.out:
        atomic_write_text(args.out, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    logger.info("%s: %s", args.samples_dir, json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> dict:
    from ttsrl.utils.cli import exit_on_bad_input, setup_logging

    args = get_parser().parse_args(argv)
    setup_logging("INFO")
    return exit_on_bad_input(lambda: run(args))


if __name__ == "__main__":
    main()
