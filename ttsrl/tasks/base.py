"""The skeleton every training entrypoint shares (ESPnet's AbsTask, icefall's train.py).

A task says how to build its model, its datasets and its loss; :func:`run_task` does the
rest: options (``--config`` YAML, ``--model_conf``, the Trainer's options), the process
group, the loaders, the Trainer (resume, checkpoints, logs), the resolved config next to
the model and ``metrics.json`` with the task's final evaluation.

A task is an instance: what one run builds (caches, timers, a reference model) lives on the
instance, never on the class. :func:`run_task` calls its hooks in this order::

    add_task_args, add_batch_args      the parser
    check_args                         right after parsing: an error is a usage error
    build_model                        (may complete args.model_conf: model.pt rebuilds the model)
    build_datasets                     (train, valid or None, collate_fn)
    setup                              what the loss needs besides the model (e.g. a reference model)
    train_loader_options               how the training batches are repeated (online RL; default: not)
    compute_loss                       the Trainer's loss
    rank_state, load_rank_state        this rank's state in every checkpoint (e.g. a buffer of samples)
    final_metrics -> evaluate          after training: metrics.json

Usage (a whole entrypoint)::

    from ttsrl.tasks.base import run_task
    from ttsrl.tasks.lm import LMTask

    def main(argv=None):
        return run_task(LMTask, argv)
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
from ttsrl.train.sampler import build_loader
from ttsrl.train.trainer import Trainer, TrainerConfig, set_seed
from ttsrl.utils.checkpoint import CheckpointError, load_checkpoint
from ttsrl.utils.cli import setup_logging
from ttsrl.utils.config import (
    ConfigError,
    NestedDictAction,
    add_config_args,
    add_dataclass_args,
    dataclass_from_args,
    parse_with_config,
)
from ttsrl.utils.fileio import write_metrics

logger = logging.getLogger(__name__)

__all__ = ["Task", "TaskTrainer", "get_parser", "run_task", "setup_training"]


class Task:
    """Override the hooks; :func:`run_task` calls them in order (see the module docstring)."""

    description = ""

    def add_task_args(self, parser: argparse.ArgumentParser) -> None:
        """Task-specific options (data paths, vocabularies)."""

    def add_batch_args(self, parser: argparse.ArgumentParser) -> None:
        """The options that bound a batch (read back by :meth:`batch_limits`)."""
        parser.add_argument("--max_tokens", type=int, default=4000, help="padded tokens (or frames) per batch")

    def batch_limits(self, args: argparse.Namespace) -> tuple[int, int]:
        """Padded tokens (or frames) per training batch and per validation batch."""
        return args.max_tokens, args.max_tokens

    def check_args(self, args: argparse.Namespace) -> None:
        """Check the options (and keep what the task needs of them); ConfigError or ValueError: a usage error."""

    def build_model(self, args: argparse.Namespace) -> torch.nn.Module:
        raise NotImplementedError

    def build_datasets(self, args: argparse.Namespace) -> tuple[Dataset, Dataset | None, Callable]:
        """(train, valid, collate_fn); datasets expose ``lengths`` for bucketing; valid may be None."""
        raise NotImplementedError

    def setup(self, args: argparse.Namespace, model: torch.nn.Module, train: Dataset, valid: Dataset | None,
              device: torch.device) -> None:
        """After the data, before the Trainer: what the loss needs besides the model (every rank)."""

    def train_loader_options(self, args: argparse.Namespace, config: TrainerConfig) -> dict:
        """More options of :func:`ttsrl.train.sampler.build_loader` for the training batches, e.g.
        ``{"repeats": 2, "repeat_group": config.grad_accum}`` (several updates per sampled batch)."""
        return {}

    def compute_loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def rank_state(self) -> dict[str, Any]:
        """This rank's state that the loss keeps between steps (saved in every checkpoint; see
        :meth:`ttsrl.train.trainer.Trainer.rank_state`)."""
        return {}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`rank_state` returned (on resume, same number of processes)."""

    def evaluate(self, args: argparse.Namespace, model: torch.nn.Module, valid_loader) -> dict:
        """Final metrics of the best model on the validation set (rank 0), for metrics.json."""
        return {}

    def final_metrics(self, args: argparse.Namespace, trainer: Trainer, valid_loader) -> dict:
        """The metrics.json entries once training ended. Every rank calls it; rank 0's are written.

        By default rank 0 loads the best weights (``model.pt``) and calls :meth:`evaluate`.
        """
        if not du.is_main():
            return {}
        model = trainer.model
        model.load_state_dict(load_checkpoint(os.path.join(args.exp_dir, "model.pt"))["model"])
        model.eval()
        return self.evaluate(args, model, valid_loader)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written (a task may give its usage lines), each option's default
    (once: a help text that names its default itself gets no second one)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "(default" in action.help:
            return action.help
        return super()._get_help_string(action)


class TaskTrainer(Trainer):
    """The Trainer of :func:`run_task`: the task's per-rank state goes into every checkpoint."""

    def __init__(self, task: Task, *args: Any, **kwargs: Any):
        self.task = task
        super().__init__(*args, **kwargs)

    def rank_state(self) -> dict[str, Any]:
        return self.task.rank_state()

    def load_rank_state(self, state: dict[str, Any]) -> None:
        self.task.load_rank_state(state)


def get_parser(task: Task | type[Task]) -> argparse.ArgumentParser:
    task = task() if isinstance(task, type) else task
    p = argparse.ArgumentParser(description=task.description, formatter_class=_HelpFormatter)
    add_config_args(p)
    p.add_argument("--exp_dir", required=True, help="output folder: checkpoints, logs, model.pt, metrics.json")
    p.add_argument("--ngpu", type=int, default=None, help="0 = CPU; default: CUDA when available")
    task.add_batch_args(p)
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


def run_task(task: Task | type[Task], argv: Sequence[str] | None = None) -> dict:
    """Parse the options, build the task's model, data and loss, train, write metrics.json; the Trainer's summary.

    A checkpoint that cannot be read (the init model, a resumed step, ``best.pt``) is one ERROR line naming
    the file and what to do, and exit status 1.
    """
    task = task() if isinstance(task, type) else task
    setup_logging("INFO")
    parser = get_parser(task)
    args = parse_with_config(parser, argv)
    try:
        task.check_args(args)
    except (ConfigError, ValueError) as e:
        parser.error(str(e))
    try:
        return _run(task, args)
    except CheckpointError as e:
        logger.error("%s", e)
        raise SystemExit(1) from None


def _run(task: Task, args: argparse.Namespace) -> dict:
    device, cfg = setup_training(args)
    model = task.build_model(args)
    if args.init_model:
        model.load_state_dict(load_checkpoint(args.init_model)["model"])
        logger.info("initialized from %s", args.init_model)
    logger.info("%s: %.2fM parameters", type(model).__name__, sum(p.numel() for p in model.parameters()) / 1e6)
    train_ds, valid_ds, collate = task.build_datasets(args)
    os.makedirs(args.exp_dir, exist_ok=True)
    task.setup(args, model, train_ds, valid_ds, device)
    max_train, max_valid = task.batch_limits(args)
    train = build_loader(train_ds, train_ds.lengths, max_train, collate, seed=cfg.seed, num_workers=cfg.num_workers,
                         **task.train_loader_options(args, cfg))
    valid = None
    if valid_ds is not None:
        valid = build_loader(valid_ds, valid_ds.lengths, max_valid, collate, shuffle=False)
    trainer = TaskTrainer(task, model, train, valid, task.compute_loss, cfg, args.exp_dir, resolved_config=args,
                          device=device)
    summary = trainer.train()
    metrics = task.final_metrics(args, trainer, valid)
    if metrics and du.is_main():
        write_metrics(os.path.join(args.exp_dir, "metrics.json"), metrics)
        logger.info("metrics: %s", json.dumps(metrics))
    summary["metrics"] = metrics
    du.cleanup()
    return summary
