"""Sampling a whole token dir: batches of (prompt, text), N candidates each, written to disk.

Used by ``ttsrl.bin.sample_lm`` (stage 5). Output keys are ``<utt>-c<k>`` (k = 0 .. N-1).

Usage::

    lm = load_codec_lm("exp/base/lm", device)
    generate_candidates(lm, "dump/tokens/dev", "exp/base/samples/dev", SamplingConfig(num_candidates=4))
"""
from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
from tqdm import tqdm

from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import write_kv
from ttsrl.data.token_dataset import TokenDataset, collate_tokens, has_prompts, lm_input
from ttsrl.models.codec_lm import CodecLM
from ttsrl.sample.sampler import SamplingConfig, sample, tag_ids
from ttsrl.utils.jobs import job_share, job_suffix

logger = logging.getLogger(__name__)


def candidate_key(utt: str, k: int) -> str:
    return f"{utt}-c{k}"


def generate_candidates(model: CodecLM, token_dir: str, out_dir: str, cfg: SamplingConfig, *,
                        lm_prompt: bool = True, tag: str | None = None, batch_size: int = 8,
                        job: int = 1, num_jobs: int = 1) -> dict:
    """Samples ``cfg.num_candidates`` token sequences per utterance of job ``job``'s share of ``token_dir``.

    The LM reads the set's zero-shot prompts when it has them and ``lm_prompt`` (the text alone
    otherwise); ``tag`` is the control tag of a Chain-of-Hindsight LM. Writes ``tokens<suffix>.ark/.scp``,
    ``logprobs<suffix>`` and ``finished<suffix>`` into ``out_dir`` (suffix ``.K`` with several jobs).
    Returns ``{"candidates", "cut"}`` (cut: candidates stopped at the length bound).
    """
    device = next(model.parameters()).device
    with_prompt = lm_prompt and has_prompts(token_dir)
    ds = TokenDataset(token_dir, with_prompt=with_prompt)
    # this job's rows; rows of similar length share a batch (less padding)
    utts = sorted(job_share(ds.utts, job, num_jobs), key=lambda u: len(ds.text[u]))
    tag_ids(model, tag, 1)  # fail early on a tag the model does not have
    if model.config.num_tags > 0:
        logger.info("sampling with control tag %r", tag or "good")
    index = {u: i for i, u in enumerate(ds.utts)}
    suffix = job_suffix(job, num_jobs)
    os.makedirs(out_dir, exist_ok=True)
    tokens, logprobs, finished = {}, {}, {}
    for b in tqdm(range(0, len(utts), batch_size), desc=f"sampling {os.path.basename(token_dir)}", unit="batch"):
        items = [ds[index[u]] for u in utts[b : b + batch_size]]
        batch = collate_tokens([lm_input(it["text"], it.get("prompt_text"), it.get("prompt_speech")) for it in items])
        # a seed per (job, batch): jobs never repeat each other's draws, reruns repeat their own
        seed_cfg = dataclasses.replace(cfg, seed=cfg.seed + 1000003 * job + b)
        out = sample(model, batch["text"].to(device), batch["text_lens"].to(device), seed_cfg,
                     prompt=batch["prompt"].to(device), prompt_lens=batch["prompt_lens"].to(device),
                     target_text_lens=batch["target_text_lens"].to(device),
                     tags=tag_ids(model, tag, len(items), device))
        for i, it in enumerate(items):
            for k in range(cfg.num_candidates):
                j = i * cfg.num_candidates + k
                key = candidate_key(it["utt"], k)
                tokens[key] = out.tokens[j].cpu().numpy().astype(np.int32)
                logprobs[key] = f"{float(out.logprobs[j]):.4f}"
                finished[key] = str(int(out.finished[j]))
    keys = sorted(tokens)
    write_ark_scp(os.path.join(out_dir, f"tokens{suffix}.ark"), os.path.join(out_dir, f"tokens{suffix}.scp"),
                  ((k, tokens[k]) for k in keys))
    write_kv(os.path.join(out_dir, f"logprobs{suffix}"), logprobs)
    write_kv(os.path.join(out_dir, f"finished{suffix}"), finished)
    n_cut = sum(v == "0" for v in finished.values())
    logger.info("%d candidates for %d utterances in %s (%d cut at the length bound)", len(keys), len(utts),
                out_dir, n_cut)
    return {"candidates": len(keys), "cut": n_cut}
