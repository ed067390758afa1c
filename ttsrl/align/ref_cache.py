"""The reference model's sequence log-probs of every pair, computed once (DPO's pi_ref terms).

DPO needs ``log pi_ref(y_w)`` and ``log pi_ref(y_l)`` of every pair; the reference is frozen,
so they are computed once per pair file with the reference under ``no_grad`` and saved
(atomically) instead of running the reference in every training step. The cache is keyed by
the pair index (the line order of ``pairs.jsonl``) and stamped with the SHA-256 of the pair
file, of the reference model file and of the token dir's text/prompt files: when any of
them changed, or the prompt setting differs, the cache is stale and is recomputed with a
warning.

Per pair the cache holds the summed log-probs of the predicted tokens (speech tokens and
<eos>, prompt excluded) and their number, so that both the summed and the length-averaged
log-probs (``--average``) come from one cache.

Usage::

    cache = load_or_compute_ref_logps("exp/dpo/ref_logps.pt", ref_model, dataset,
                                      pairs_path="pairs.jsonl", ref_path="exp/base/lm/model.pt")
    ref_chosen, ref_rejected = cache.sequence(batch["index"], average=False)    # (B,) each
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ttsrl.align.data import PairDataset, collate_pairs, forward_rows
from ttsrl.losses.preference import sequence_logprobs
from ttsrl.train import distributed as du
from ttsrl.train.sampler import BucketBatchSampler
from ttsrl.train.trainer import move_to_device
from ttsrl.utils.fileio import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["RefLogps", "cache_stamp", "compute_ref_logps", "file_sha256", "load_or_compute_ref_logps"]

CACHE_VERSION = 1


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_stamp(dataset: PairDataset, ref_path: str | None) -> dict:
    """What the cached values depend on: the pair file, the reference model and the token dir's inputs."""
    token_files = ["text"] + (["prompt_text", "prompt_speech.scp"] if dataset.with_prompt else [])
    token_dir = dataset.tokens.dir
    return {
        "version": CACHE_VERSION,
        "pairs_sha256": file_sha256(dataset.path) if dataset.path else None,
        "ref_sha256": file_sha256(ref_path) if ref_path else None,
        "token_sha256": {f: file_sha256(os.path.join(token_dir, f)) for f in token_files},
        "with_prompt": dataset.with_prompt,
    }


@dataclass
class RefLogps:
    """Per pair index: summed log-probs and token counts of chosen and rejected (NaN / 0 when absent)."""

    chosen: torch.Tensor  # (N,) float64
    rejected: torch.Tensor  # (N,)
    chosen_tokens: torch.Tensor  # (N,) long
    rejected_tokens: torch.Tensor  # (N,)

    def sequence(self, index: torch.Tensor, average: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference log-probs (B,) of chosen and rejected for the pair indices ``index`` (B,)."""
        idx = index.cpu().long()
        c, r = self.chosen[idx], self.rejected[idx]
        if average:
            c = c / self.chosen_tokens[idx].clamp(min=1)
            r = r / self.rejected_tokens[idx].clamp(min=1)
        return c.float().to(index.device), r.float().to(index.device)

    def state(self) -> dict:
        return {"chosen": self.chosen, "rejected": self.rejected, "chosen_tokens": self.chosen_tokens,
                "rejected_tokens": self.rejected_tokens}


@torch.no_grad()
def compute_ref_logps(ref_model, dataset: PairDataset, max_tokens: int = 4000,
                      device: str | torch.device = "cpu") -> RefLogps:
    """Runs the frozen reference over every pair (eval mode, no gradient) and collects sequence log-probs."""
    n = max(rec["_index"] for rec in dataset.records) + 1
    out = RefLogps(torch.full((n,), float("nan"), dtype=torch.float64), torch.full((n,), float("nan"),
                   dtype=torch.float64), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
    was_training = ref_model.training
    ref_model.eval()
    # one process, all pairs, fixed order: the loader must not shard across DDP ranks
    sampler = BucketBatchSampler(dataset.lengths, max_tokens, shuffle=False, num_replicas=1, rank=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs)
    for batch in tqdm(loader, desc="reference log-probs", unit="batch", disable=None):
        batch = move_to_device(batch, device)
        B = batch["index"].shape[0]
        logp, mask, _ = forward_rows(ref_model, batch, ("chosen", "rejected"))
        seq = sequence_logprobs(logp, mask).double().cpu()
        count = mask.sum(1).cpu()
        idx = batch["index"].cpu()
        has = batch["has_rejected"].cpu()
        out.chosen[idx], out.chosen_tokens[idx] = seq[:B], count[:B]
        out.rejected[idx[has]], out.rejected_tokens[idx[has]] = seq[B:][has], count[B:][has]
    ref_model.train(was_training)
    return out


def load_or_compute_ref_logps(path: str, ref_model, dataset: PairDataset, ref_path: str | None,
                              max_tokens: int = 4000, device: str | torch.device = "cpu") -> RefLogps:
    """The cache at ``path`` when its stamp matches; else computed (on rank 0), saved and returned."""
    stamp = cache_stamp(dataset, ref_path)
    if du.is_main():
        cached = None
        if os.path.isfile(path):
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - an unreadable cache is recomputed
                logger.warning("reference cache %s is unreadable (%s): recomputing", path, e)
        if cached is not None and cached.get("stamp") != stamp:
            changed = [k for k in stamp if cached.get("stamp", {}).get(k) != stamp[k]]
            logger.warning("reference cache %s is stale (%s changed): recomputing", path, ", ".join(changed))
            cached = None
        if cached is None:
            logger.info("computing the reference log-probs of %d pairs -> %s", len(dataset), path)
            res = compute_ref_logps(ref_model, dataset, max_tokens, device)
            with atomic_path(path, fsync=True) as tmp:
                torch.save({"stamp": stamp, **res.state()}, tmp)
        else:
            logger.info("reference log-probs from %s", path)
    du.barrier()
    data = torch.load(path, map_location="cpu", weights_only=True)
    return RefLogps(data["chosen"], data["rejected"], data["chosen_tokens"], data["rejected_tokens"])
