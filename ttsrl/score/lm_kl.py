"""Token-average KL(aligned LM || reference LM) on a token dir: the ``kl`` column of the results.

Both LMs read the same sequences: the set's ground-truth speech tokens after its zero-shot
prompt (teacher forcing, the layout of :func:`ttsrl.data.token_dataset.lm_input`), so the
number is deterministic and the same for every model. At every predicted speech position
(prompt, text and padding excluded) the KL of the full next-token distributions is taken; the
mean over all positions of the set is reported. A Chain-of-Hindsight LM reads with its "good" tag.

Usage::

    out = lm_kl(load_codec_lm("exp/dpo/lm"), load_codec_lm("exp/base/lm"), "dump/tokens/test")
    out["kl"], out["kl_tokens"], out["n_utts"]
    train_minutes(["exp/dpo_iter1/lm/metrics.json", "exp/dpo_iter2/lm/metrics.json"])   # summed train_seconds / 60
"""
from __future__ import annotations

import json

import torch

from ttsrl.data.token_dataset import TokenDataset, collate_tokens, has_prompts, lm_input
from ttsrl.losses.diffro import token_kl
from ttsrl.models.codec_lm import CodecLM
from ttsrl.sample.sampler import tag_ids

__all__ = ["lm_kl", "train_minutes"]


def lm_kl(lm: CodecLM, ref: CodecLM, token_dir: str, batch_size: int = 16, lm_prompt: bool = True) -> dict:
    """Token-average KL(lm || ref) along the set's ground-truth speech tokens (after its prompts, when it
    has them and ``lm_prompt``): ``{"kl", "kl_tokens", "n_utts"}``."""
    ds = TokenDataset(token_dir, with_prompt=lm_prompt and has_prompts(token_dir))
    total = n = 0.0
    with torch.inference_mode():
        for b in range(0, len(ds), batch_size):
            items = [ds[i] for i in range(b, min(b + batch_size, len(ds)))]
            x = collate_tokens([lm_input(it["text"], it.get("prompt_text"), it.get("prompt_speech"), it["speech"])
                                for it in items])
            outs = [m(x["text"], x["text_lens"], x["speech"], x["speech_lens"], x["prompt_lens"],
                      tags=tag_ids(m, None, len(items))) for m in (lm, ref)]
            kl = token_kl(outs[0].logits, outs[1].logits)  # (B, Ts + 1)
            total += float((kl * outs[0].mask).sum())
            n += float(outs[0].mask.sum())
    return {"kl": total / max(n, 1.0), "kl_tokens": int(n), "n_utts": len(ds)}


def train_minutes(paths: list[str]) -> float:
    """Sum of ``train_seconds`` over metrics.json files, in minutes; a missing file or key raises, naming it."""
    total = 0.0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
        if "train_seconds" not in metrics:
            raise SystemExit(f"{path}: no train_seconds")
        total += float(metrics["train_seconds"])
    return total / 60.0
