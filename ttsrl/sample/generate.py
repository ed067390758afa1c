"""Sampling a whole token dir: batches of (prompt, text), N candidates each, written to disk.

Used by ``ttsrl.bin.sample_lm`` (stage 5). Output keys are ``<utt>-c<k>`` (k = 0 .. N-1).
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
from tqdm import tqdm

from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.cli import job_share, job_suffix
from ttsrl.data.datadir import write_kv
from ttsrl.data.token_dataset import TokenDataset, has_prompts, pad_1d
from ttsrl.sample.sampler import SamplingConfig, sample, tag_ids
from ttsrl.train import distributed as du

logger = logging.getLogger(__name__)


def candidate_key(utt: str, k: int) -> str:
    return f"{utt}-c{k}"


def generate_candidates(args, cfg: SamplingConfig) -> dict:
    from ttsrl.tasks.lm import load_codec_lm

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    with_prompt = not args.no_prompt and has_prompts(args.token_dir)
    ds = TokenDataset(args.token_dir, with_prompt=with_prompt)
    # this job's rows; rows of similar length share a batch (less padding)
    utts = sorted(job_share(ds.utts, args.job, args.num_jobs), key=lambda u: len(ds.text[u]))
    device = du.get_device(args.ngpu)
    model = load_codec_lm(args.lm, device)
    tag = getattr(args, "tag", None)
    tag_ids(model, tag, 1)  # fail early on a tag the model does not have
    if model.cfg.num_tags > 0:
        logger.info("sampling with control tag %r", tag or "good")
    index = {u: i for i, u in enumerate(ds.utts)}
    suffix = job_suffix(args.job, args.num_jobs)
    os.makedirs(args.out_dir, exist_ok=True)
    tokens, logprobs, finished = {}, {}, {}
    for b in tqdm(range(0, len(utts), args.batch_size), desc=f"sampling {os.path.basename(args.token_dir)}",
                  unit="batch"):
        items = [ds[index[u]] for u in utts[b : b + args.batch_size]]
        texts = [torch.cat([it["prompt_text"], it["text"]]) if with_prompt else it["text"] for it in items]
        text, text_lens = pad_1d(texts)
        kw = {}
        if with_prompt:
            prompt, prompt_lens = pad_1d([it["prompt_speech"] for it in items])
            kw = {"prompt": prompt.to(device), "prompt_lens": prompt_lens.to(device)}
        # a seed per (job, batch): jobs never repeat each other's draws, reruns repeat their own
        seed_cfg = SamplingConfig(**{**cfg.__dict__, "seed": cfg.seed + 1000003 * args.job + b})
        out = sample(model, text.to(device), text_lens.to(device), seed_cfg,
                     target_text_lens=torch.tensor([len(it["text"]) for it in items], device=device),
                     tags=tag_ids(model, tag, len(items), device), **kw)
        for i, it in enumerate(items):
            for k in range(cfg.num_candidates):
                j = i * cfg.num_candidates + k
                key = candidate_key(it["utt"], k)
                tokens[key] = out.tokens[j].cpu().numpy().astype(np.int32)
                logprobs[key] = f"{float(out.logprobs[j]):.4f}"
                finished[key] = str(int(out.finished[j]))
    keys = sorted(tokens)
    write_ark_scp(os.path.join(args.out_dir, f"tokens{suffix}.ark"), os.path.join(args.out_dir, f"tokens{suffix}.scp"),
                  ((k, tokens[k]) for k in keys))
    write_kv(os.path.join(args.out_dir, f"logprobs{suffix}"), logprobs)
    write_kv(os.path.join(args.out_dir, f"finished{suffix}"), finished)
    n_cut = sum(v == "0" for v in finished.values())
    logger.info("%d candidates for %d utterances in %s (%d cut at the length bound)", len(keys), len(utts),
                args.out_dir, n_cut)
    return {"candidates": len(keys), "cut": n_cut}
