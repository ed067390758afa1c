"""The skeleton every training entrypoint shares (ESPnet's AbsTask, icefall's train.py).

A task says how to build its model, its datasets and its loss; :func:`run_task` does the
rest: options (``--config`` YAML, ``--model_conf``, the Trainer's options), the process
group, the loaders, the Trainer (resume, checkpoints, logs), the resolved config next to
the model and ``metrics.json`` with the task's final evaluation.

Usage (a whole entrypoint)::

    from ttsrl.tasks.base import run_task
    from ttsrl.tasks.lm import LMTask

    def main(argv=None):
        run_task(LMTask, argv)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ttsrl.train import distributed as du
from ttsrl.train.config import (
    NestedDictAction,
    add_config_args,
    add_dataclass_args,
    dataclass_from_args,
    parse_with_config,
)
from ttsrl.train.sampler import build_loader
from ttsrl.train.trainer import Trainer, TrainerConfig, load_checkpoint, set_seed
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


class Task:
    """Override the class methods; `run_task` calls them in order."""

    description = ""

    @classmethod
    def add_task_args(cls, parser: argparse.ArgumentParser) -> None:
        """Task-specific options (data paths, vocabularies)."""

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> torch.nn.Module:
        raise NotImplementedError

    @classmethod
    def build_datasets(cls, args: argparse.Namespace) -> tuple[Dataset, Dataset, Callable]:
        """(train, valid, collate_fn); datasets expose ``lengths`` for bucketing."""
        raise NotImplementedError

    @staticmethod
    def compute_loss(model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    @classmethod
    def evaluate(cls, args: argparse.Namespace, model: torch.nn.Module, valid_loader) -> dict:
        """Final metrics of the best model on the validation set (rank 0), for metrics.json."""
        return {}


def get_parser(task: type[Task]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=task.description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_args(p)
    p.add_argument("--exp_dir", required=True, help="output folder: checkpoints, logs, model.pt, metrics.json")
    p.add_argument("--ngpu", type=int, default=None, help="0 = CPU; default: CUDA when available")
    p.add_argument("--max_tokens", type=int, default=4000, help="padded tokens (or frames) per batch")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--model_conf", action=NestedDictAction, default={},
                   help="model options: key=value or a YAML mapping")
    p.add_argument("--init_model", default=None,
                   help="start from the weights of this model.pt (fine-tuning; the architecture must match); "
                        "a checkpoint in --exp_dir still takes precedence (resume)")
    task.add_task_args(p)
    add_dataclass_args(p, TrainerConfig, group="trainer")
    return p


def setup_training(args: argparse.Namespace) -> tuple[torch.device, TrainerConfig]:
    """Threads, the process group, this rank's device, the Trainer's config and the seed of a run."""
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    info = du.init_distributed()
    cfg = dataclass_from_args(TrainerConfig, args)
    set_seed(cfg.seed)
    return du.get_device(args.ngpu, info.local_rank), cfg


def run_task(task: type[Task], argv: Sequence[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = parse_with_config(get_parser(task), argv)
    device, cfg = setup_training(args)
    model = task.build_model(args)
    if args.init_model:
        model.load_state_dict(load_checkpoint(args.init_model)["model"])
        logger.info("initialized from %s", args.init_model)
    logger.info("%s: %.2fM parameters", type(model).__name__, sum(p.numel() for p in model.parameters()) / 1e6)
    train_ds, valid_ds, collate = task.build_datasets(args)
    train = build_loader(train_ds, train_ds.lengths, args.max_tokens, collate, seed=cfg.seed,
                         num_workers=cfg.num_workers)
    valid = build_loader(valid_ds, valid_ds.lengths, args.max_tokens, collate, shuffle=False)
    os.makedirs(args.exp_dir, exist_ok=True)
    summary = Trainer(model, train, valid, task.compute_loss, cfg, args.exp_dir, resolved_config=args,
                      device=device).train()
    if du.is_main():
        model.load_state_dict(load_checkpoint(os.path.join(args.exp_dir, "model.pt"))["model"])
        model.to(device).eval()
        metrics = task.evaluate(args, model, valid)
        if metrics:
            write_metrics(os.path.join(args.exp_dir, "metrics.json"), metrics)
            logger.info("metrics: %s", json.dumps(metrics))
        summary["metrics"] = metrics
    du.cleanup()
    return summary


def write_metrics(path: str, metrics: dict) -> None:
    """Merges `metrics` into the JSON file at `path` (atomic)."""
    old = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    old.update(metrics)
    atomic_write_text(path, json.dumps(old, indent=2, sort_keys=True) + "\n")
