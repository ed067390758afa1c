#!/usr/bin/env python3
"""Cost of the token-level reward vs the audio-level reward on the same candidates (DiffRO's cost claim).

Scores the first ``--num_candidates`` candidates of a sampling output (``tokens.scp``, keys
``<utt>-c<k>``) twice, in one run:

- ours: the multi-task reward model on the speech tokens (``ttsrl.align.rewards.TokenReward``,
  text component: CTC log-likelihood of the text);
- peer: the audio-level reward (``ttsrl.align.audio_reward.AudioReward``, text component): flow
  matching (``--flow_n_steps``, classifier-free guidance) + Griffin-Lim + the tokenizer's CTC
  head over the re-tokenized audio.

Both run with the same batch size after one warm-up batch; seconds per candidate are reported,
and ratio = peer / ours (how many times cheaper the token-level reward is). The Spearman
correlation of the two text rewards over the candidates is reported beside (do they agree?).

The defaults are the mini_en recipe's files (run stages 1-6 first).

Usage: python bench/reward_cost.py [--exp_dir egs/mini_en/rl1/exp] [--set dev] [--num_candidates 64]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "egs", "mini_en", "rl1")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe_dir", default=RECIPE, help="recipe dir holding data/, dump/ and exp/")
    p.add_argument("--set", default="dev", help="the sampled set")
    p.add_argument("--samples_dir", default=None, help="its candidates (default: <recipe_dir>/exp/base/samples/<set>)")
    p.add_argument("--num_candidates", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--flow_n_steps", type=int, default=10, help="NFE of the audio path (the recipe's default)")
    p.add_argument("--griffin_lim_iters", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    return p


def timed(fn, batches) -> tuple[float, list[dict]]:
    """Seconds of ``fn`` over all batches (after a warm-up on the first) and its outputs."""
    fn(batches[0])
    t0 = time.perf_counter()
    outs = [fn(b) for b in batches]
    return time.perf_counter() - t0, outs


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from scipy.stats import spearmanr

    from ttsrl.align.audio_reward import AudioReward
    from ttsrl.align.rewards import TokenReward, parse_candidate_key, read_candidates
    from ttsrl.data.token_dataset import ctc_text_path, read_id_file
    from ttsrl.models.reward import load_reward_model
    from ttsrl.sample.synthesize import FlowOptions, TTSPipeline

    r = args.recipe_dir
    exp = os.path.join(r, "exp")
    samples = args.samples_dir or os.path.join(exp, "base", "samples", args.set)
    cands = read_candidates(samples)
    keys = sorted(cands.keys())[: args.num_candidates]
    if not keys:
        raise SystemExit(f"no candidates in {samples}")
    texts = read_id_file(ctc_text_path(os.path.join(r, "dump", "tokens", args.set)))  # the reward's CTC units
    token_reward = TokenReward(load_reward_model(os.path.join(exp, "reward")))
    tts = TTSPipeline.from_dirs(None, os.path.join(exp, "base", "flow", "model.pt"), os.path.join(exp, "tokenizer"),
                                griffin_lim_iters=args.griffin_lim_iters)
    audio_reward = AudioReward(tts, os.path.join(r, "data", args.set), flow_opts=FlowOptions(n_steps=args.flow_n_steps),
                               batch_size=args.batch_size)
    batches = []
    for b in range(0, len(keys), args.batch_size):
        chunk = keys[b : b + args.batch_size]
        utts = [parse_candidate_key(k)[0] for k in chunk]
        batches.append(([np.asarray(cands[k]).reshape(-1) for k in chunk], utts))

    with torch.inference_mode():
        t_tok, tok_out = timed(lambda b: token_reward.score(b[0], text=[texts[u] for u in b[1]]), batches)
        t_aud, aud_out = timed(lambda b: audio_reward.score(b[0], utts=b[1]), batches)
    n = len(keys)
    ours, peer = t_tok / n, t_aud / n
    tok_text = torch.cat([o["text"] for o in tok_out]).numpy()
    aud_text = torch.cat([o["text"] for o in aud_out]).numpy()
    rho = float(spearmanr(tok_text, aud_text).statistic)
    print(f"token-level reward: {ours * 1e3:.2f} ms/candidate; audio-level reward (flow NFE {args.flow_n_steps} + "
          f"Griffin-Lim {args.griffin_lim_iters} + CTC): {peer * 1e3:.1f} ms/candidate; "
          f"Spearman(token text, audio text) = {rho:.3f} over {n} candidates", flush=True)
    print(json.dumps({
        "bench": "reward_cost", "ours": round(ours, 6), "peer": round(peer, 6), "unit": "s/candidate",
        "ratio": round(peer / ours, 2), "ours_is": "multi-task reward model on speech tokens",
        "peer_is": f"flow (NFE {args.flow_n_steps}) + Griffin-Lim ({args.griffin_lim_iters} it) + tokenizer CTC",
        "candidates": n, "batch_size": args.batch_size, "spearman_token_vs_audio_text": round(rho, 4),
        "threads": torch.get_num_threads(), "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
