"""Alignment training task: a trained codec LM aligned to preference pairs or a reward model.

The methods, the loss and the options (:class:`ttsrl.align.trainer.AlignOptions`, one
``--<name>`` each) are those of :mod:`ttsrl.align.trainer`; this task builds the policy
(``--init_lm``), the pair datasets, the frozen reference (or its cached log-probs, computed once
per pair file), DiffRO's reward model and GRPO's online loop (:class:`ttsrl.align.grpo.GRPOLoss`:
the prompts of ``--token_dir``, G samples each, the token- or audio-level reward; its batches
repeat ``--num_updates`` times and its buffer of samples is checkpointed per rank), and
:func:`ttsrl.tasks.base.run_task` trains. The aligned LM's folder gets the text units of
``--init_lm``'s (``ttsrl.align.trainer.carry_text_units``).

``metrics.json``: ``method``, ``train_seconds``, ``ref_cache_seconds``, ``steps``, ``best_step``,
``pairs`` (grpo: the prompts) and, with validation data, the best model's ``val_*`` stats and ``kl``.

Usage::

    python -m ttsrl.bin.train_align --config conf/align/dpo.yaml --method dpo \\
        --init_lm exp/base/lm/model.pt --pairs exp/base/pairs/train/pairs.jsonl \\
        --token_dir dump/tokens/train --valid_pairs exp/base/pairs/dev/pairs.jsonl \\
        --valid_token_dir dump/tokens/dev --exp_dir exp/dpo/lm
    python -m ttsrl.bin.train_align --config conf/align/grpo.yaml --method grpo --init_lm exp/base/lm/model.pt \\
        --token_dir dump/tokens/train_align --valid_token_dir dump/tokens/dev --reward_model exp/reward \\
        --exp_dir exp/grpo/lm
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

from ttsrl.align.data import PairDataset, collate_pairs
from ttsrl.align.grpo import GRPOLoss, build_group_rewards
from ttsrl.align.ref_cache import load_or_compute_ref_logps
from ttsrl.align.trainer import (
    ONLINE_METHODS,
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
from ttsrl.train.trainer import TrainerConfig
from ttsrl.utils.checkpoint import load_checkpoint
from ttsrl.utils.config import ConfigError, add_dataclass_args, dataclass_from_args


class AlignTask(Task):
    description = "Align a trained codec LM to preference pairs or a reward model (DPO, RAFT, CoH, DiffRO, GRPO)."

    def __init__(self) -> None:
        self.opts: AlignOptions | None = None
        self._speech_vocab_size = 0  # the policy's, for the pair files' checks
        self.loss_fn: AlignLoss | GRPOLoss | None = None
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
        # LM rows per pair in a training step (grpo: the group, each of about the ground truth's length)
        pair_rows = {"raft": 1, "bon": 1, "diffro": 1, "grpo": o.group_size}.get(o.method, 2)
        V = self._speech_vocab_size
        pairs = None if o.method == "grpo" else o.pairs  # grpo: the prompts of the token dir, no pairs
        train = PairDataset(o.token_dir, pairs, o.lm_prompt and has_prompts(o.token_dir),
                            need_rejected=need_rejected, rows=pair_rows, speech_vocab_size=V)
        valid = None
        if o.valid_pairs or (o.method in ONLINE_METHODS and o.valid_token_dir):
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
        if o.method == "grpo":
            keep_ref = bool(o.kl_weight) or (valid is not None and o.valid_kl)
            reward, valid_reward = build_group_rewards(o, device, with_valid=valid is not None)
            self.loss_fn = GRPOLoss(o, load_reference(o.init_lm, device) if keep_ref else None, reward, valid_reward,
                                    device)
            self._start = time.time()
            return
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

    def train_loader_options(self, args, config: TrainerConfig) -> dict:
        """grpo: every run of grad_accum batches repeats --num_updates times (one sampling, mu updates)."""
        if self.opts.method != "grpo":
            return {}
        return {"repeats": self.opts.num_updates, "repeat_group": config.grad_accum}

    def compute_loss(self, model, batch):
        return self.loss_fn(model, batch)

    def rank_state(self) -> dict:
        return self.loss_fn.state_dict() if isinstance(self.loss_fn, GRPOLoss) else {}

    def load_rank_state(self, state: dict) -> None:
        if isinstance(self.loss_fn, GRPOLoss):
            self.loss_fn.load_state_dict(state)

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
