"""Alignment training task: a trained codec LM aligned to preference pairs or a reward model.

The methods, the loss and the options (:class:`ttsrl.align.trainer.AlignOptions`, one
``--<name>`` each) are those of :mod:`ttsrl.align.trainer`; this task builds the policy
(``--init_lm``), the pair datasets, the frozen reference (or its cached log-probs, computed once
per pair file) and DiffRO's reward model, and :func:`ttsrl.tasks.base.run_task` trains. The
aligned LM's folder gets the text units of ``--init_lm``'s (``ttsrl.align.trainer.carry_text_units``).

``metrics.json``: ``method``, ``train_seconds``, ``ref_cache_seconds``, ``steps``, ``best_step``,
``pairs`` and, with validation pairs, the best model's ``val_*`` stats and ``kl``.

Usage::

    python -m ttsrl.bin.train_align --config conf/align/dpo.yaml --method dpo \\
        --init_lm exp/base/lm/model.pt --pairs exp/base/pairs/train/pairs.jsonl \\
        --token_dir dump/tokens/train --valid_pairs exp/base/pairs/dev/pairs.jsonl \\
        --valid_token_dir dump/tokens/dev --exp_dir exp/dpo/lm
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

from ttsrl.align.data import PairDataset, collate_pairs
from ttsrl.align.ref_cache import load_or_compute_ref_logps
from ttsrl.align.trainer import (
    PREFERENCE_METHODS,
    AlignLoss,
    AlignOptions,
    build_policy,
    build_reward_fn,
    carry_text_units,
    load_reference,
)
from ttsrl.data.token_dataset import has_prompts
from ttsrl.models.codec_lm import CodecLM
from ttsrl.tasks.base import Task
from ttsrl.train import distributed as du
from ttsrl.utils.checkpoint import load_checkpoint
from ttsrl.utils.config import ConfigError, add_dataclass_args, dataclass_from_args


class AlignTask(Task):
    description = "Align a trained codec LM to preference pairs or a reward model (DPO, RAFT, CoH, DiffRO)."

    def __init__(self) -> None:
        self.opts: AlignOptions | None = None
        self._speech_vocab_size = 0  # the policy's, for the pair files' checks
        self.loss_fn: AlignLoss | None = None
        self.pairs = 0  # training pairs
        self.ref_seconds = 0.0  # computing the reference caches
        self._start = 0.0  # when training started

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        add_dataclass_args(p, AlignOptions, group="alignment")

    def check_args(self, args: argparse.Namespace) -> None:
        self.opts = dataclass_from_args(AlignOptions, args)

    def build_model(self, args: argparse.Namespace) -> CodecLM:
        policy = build_policy(self.opts.init_lm, self.opts.method, args.model_conf)
        args.model_conf = dataclasses.asdict(policy.config)  # model.pt rebuilds the policy (load_codec_lm)
        self._speech_vocab_size = policy.config.speech_vocab_size
        return policy

    def build_datasets(self, args):
        o = self.opts
        need_rejected = o.method in PREFERENCE_METHODS
        pair_rows = 1 if o.method in ("raft", "bon", "diffro") else 2  # LM rows per pair in a training step
        V = self._speech_vocab_size
        train = PairDataset(o.token_dir, o.pairs, o.lm_prompt and has_prompts(o.token_dir),
                            need_rejected=need_rejected, rows=pair_rows, speech_vocab_size=V)
        valid = None
        if o.valid_pairs or (o.method == "diffro" and o.valid_token_dir):
            valid = PairDataset(o.valid_token_dir, o.valid_pairs, o.lm_prompt and has_prompts(o.valid_token_dir),
                                need_rejected=need_rejected, rows=2, speech_vocab_size=V)
        self.pairs = len(train)
        return train, valid, collate_pairs

    def setup(self, args, model, train, valid, device) -> None:
        """The text units, the reference (model and/or cached log-probs), DiffRO's reward and the loss."""
        o = self.opts
        if du.is_main():
            try:
                carry_text_units(o.init_lm, o.token_dir, args.exp_dir)
            except ConfigError as e:
                raise SystemExit(f"train_align: {e}") from e
        use_cache = o.method in PREFERENCE_METHODS and o.ref_mode == "cache"
        keep_ref = (o.method == "diffro" or (o.method in PREFERENCE_METHODS and o.ref_mode == "model")
                    or (valid is not None and o.valid_kl))
        reference = load_reference(o.init_lm, device) if (keep_ref or use_cache) else None
        train_cache = valid_cache = None
        t0 = time.time()
        if use_cache:
            max_tokens = self.batch_limits(args)[0]
            train_cache = load_or_compute_ref_logps(o.ref_cache or os.path.join(args.exp_dir, "ref_logps.pt"),
                                                    reference, train, o.init_lm, max_tokens, device)
            if valid is not None:
                valid_cache = load_or_compute_ref_logps(os.path.join(args.exp_dir, "ref_logps_valid.pt"), reference,
                                                        valid, o.init_lm, max_tokens, device)
        self.ref_seconds = time.time() - t0
        if not keep_ref:
            reference = None  # the caches replace it: no memory for a second model
        reward_fn = None
        if o.method == "diffro":
            reward_fn = build_reward_fn(o.reward_model, device, o.reward_weights, o.target_emotion, o.targets_file)
        self.loss_fn = AlignLoss(o, reference, train_cache, valid_cache, reward_fn)
        self._start = time.time()

    def compute_loss(self, model, batch):
        return self.loss_fn(model, batch)

    def final_metrics(self, args, trainer, valid_loader) -> dict:
        """The run's numbers and, with validation data, the best model's (every rank validates)."""
        summary = trainer.summary()
        metrics: dict[str, Any] = {"method": self.opts.method, "train_seconds": round(time.time() - self._start, 2),
                                   "ref_cache_seconds": round(self.ref_seconds, 2), "steps": summary["step"],
                                   "best_step": summary["best_step"], "pairs": self.pairs}
        if valid_loader is not None:  # the best model (model.pt) on the validation pairs
            trainer.model.load_state_dict(load_checkpoint(os.path.join(args.exp_dir, "model.pt"))["model"])
            stats = trainer.validate()
            metrics.update({f"val_{k}": v for k, v in stats.items()})
            if "kl" in stats:
                metrics["kl"] = stats["kl"]
        return metrics
