"""The training loop every ttsrl model trainer reuses.

The caller builds the model, the loaders and a ``compute_loss(model, batch) -> (loss,
stats)`` function (icefall style); the :class:`Trainer` owns the rest: DDP, gradient
accumulation, clipping, AMP, the LR schedule, the non-finite-loss guard, logging
(``exp_dir/train.log``, TensorBoard under ``exp_dir/tensorboard``, tqdm), validation
averaged over ranks, atomic checkpoints with exact resume, ``best.pt`` and the final
``exp_dir/model.pt``; optionally an exponential moving average (EMA) of the weights.

Usage::

    from ttsrl.train.trainer import Trainer, TrainerConfig

    def compute_loss(model, batch):
        pred = model(batch["x"])                              # (B, D)
        loss = F.mse_loss(pred, batch["y"])
        return loss, {"loss": loss.detach(), "weight": batch["x"].size(0)}

    trainer = Trainer(model, train_loader, valid_loader, compute_loss,
                      TrainerConfig(max_epochs=10, lr=1e-3), exp_dir="exp/mlp")
    summary = trainer.train()       # resumes from exp/mlp/checkpoints if present

Conventions:

* ``stats`` values are floats or scalar tensors. The reserved key ``"weight"`` (e.g. the
  number of frames in the batch) weights the averages of the other stats in logs and in
  validation; without it every batch weighs 1. ``"loss"`` is added when missing.
* A batch that is a mapping with ``"utts"`` (a list of utterance ids) has them named in
  the error raised for a non-finite loss.
* ``compute_loss`` gets the DDP-wrapped model in training (call ``model(...)`` so that
  gradients are synchronized; use :func:`unwrap_model` for attributes) and the plain
  model in validation.
* ``step`` counts optimizer updates; ``epoch`` starts at 1.
* Exact resume needs the training order to come from ``set_epoch`` (e.g.
  :class:`ttsrl.train.sampler.BucketBatchSampler`, which can also start mid-epoch
  without reading the skipped batches); a DataLoader's worker seeds are derived from
  ``(seed, rank, epoch)`` for the same reason.
* During :meth:`Trainer.train` the ``ttsrl`` logger logs at INFO at least, so that
  ``train.log`` is complete.

Layout of ``exp_dir``::

    train.log  config.yaml  tensorboard/  model.pt (best weights + config, for inference)
    checkpoints/step_<n>.pt  checkpoints/best.pt  checkpoints/latest

With ``ema_decay > 0`` the trainer keeps an EMA of the weights (and buffers), updated after
every optimizer step; validation, the choice of ``best.pt`` and ``model.pt`` use the average,
while checkpoints keep both (``model``: the trained weights, ``ema``: the average).

Subclasses may override :meth:`Trainer.on_step_end`, :meth:`Trainer.on_validation_end`,
:meth:`Trainer.extra_state` and :meth:`Trainer.load_extra_state` (more state that must be
checkpointed), and :meth:`Trainer.rank_state` and :meth:`Trainer.load_rank_state` (state that
differs between ranks, e.g. an online-RL method's buffer of samples: gathered from every rank
into each checkpoint, each rank gets its own back).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ttsrl.train import distributed as dist_utils
from ttsrl.utils.checkpoint import (
    CheckpointError,
    checkpoint_steps,
    find_resume_checkpoint,
    load_checkpoint,
    save_checkpoint,
    unreadable_reason,
)
from ttsrl.utils.config import ConfigError, dump_config, option, to_plain
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_KEYS",
    "NonFiniteLossError",
    "Trainer",
    "TrainerConfig",
    "build_optimizer",
    "build_scheduler",
    "get_rng_state",
    "move_to_device",
    "set_rng_state",
    "set_seed",
    "unwrap_model",
]

CHECKPOINT_VERSION = 1
#: The position and bookkeeping of a run: checkpoint key -> Trainer attribute. :meth:`Trainer.state_dict`
#: saves and :meth:`Trainer._resume` restores every entry, so a new counter is one line here.
_BOOKKEEPING = {
    "step": "step", "epoch": "epoch", "batch_idx": "batch_idx", "patience_count": "patience_count",
    "bad_batches": "bad_batches", "last_valid": "last_valid", "validated_step": "_validated_step",
}
#: Keys every complete checkpoint holds (``ema`` is optional: checkpoints of runs before it lack it).
CHECKPOINT_KEYS = (
    "version", *_BOOKKEEPING, "model", "optimizer", "scheduler", "scaler", "rng", "world_size", "config",
    "trainer_config", "best", "stopped_early", "extra",
)


@dataclass
class TrainerConfig:
    """Options of :class:`Trainer` (``add_dataclass_args(parser, TrainerConfig)`` exposes them)."""

    max_epochs: int = option(10, "stop after this many epochs (0: no limit, needs max_steps)")
    max_steps: int = option(0, "stop after this many optimizer steps (0: no limit)")
    optim: str = option("adamw", "optimizer", choices=("adam", "adamw", "sgd"))
    lr: float = option(1e-3, "peak learning rate")
    weight_decay: float = option(0.0, "weight decay (applied to weights of 2 or more dims only)")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas")
    eps: float = option(1e-8, "Adam epsilon")
    momentum: float = option(0.0, "SGD momentum")
    scheduler: str = option(
        "warmup_cosine", "LR schedule (all warm up linearly over warmup_steps)",
        choices=("warmup_cosine", "noam", "constant"),
    )
    warmup_steps: int = option(0, "linear warm-up steps (noam: the step of the peak)")
    min_lr: float = option(0.0, "warmup_cosine: learning rate at the last step")
    grad_accum: int = option(1, "batches accumulated per optimizer step")
    grad_clip: float = option(0.0, "clip the global gradient norm to this (0: no clipping)")
    ema_decay: float = option(0.0, "keep an exponential moving average of the weights with this decay per step "
                                   "(e.g. 0.999; 0: off); validation, best.pt and model.pt use the average")
    amp: str = option("none", "mixed precision on CUDA (ignored on CPU)", choices=("none", "bf16", "fp16"))
    log_interval: int = option(50, "log training stats every N steps")
    valid_interval: int = option(0, "validate every N steps (0: at the end of every epoch)")
    save_interval: int = option(0, "also checkpoint every N steps (0: only at validations, epoch ends and the end)")
    keep_last_k: int = option(3, "keep the newest K step checkpoints (0: keep all)")
    best_metric: str = option("loss", "validation stat that selects best.pt and drives early stopping")
    best_mode: str = option("min", "whether a smaller or larger best_metric is better", choices=("min", "max"))
    patience: int = option(0, "stop after this many validations without improvement (0: never)")
    stop_above: dict[str, float] = option({}, "upper limits of validation stats, e.g. {kl: 0.2}: a validation "
                                              "above one stops training and is never best.pt")
    max_bad_batches: int = option(0, "skip up to N batches with a non-finite loss before failing")
    seed: int = option(0, "random seed (each rank adds its rank)")
    num_workers: int = option(0, "DataLoader workers (for the loaders the caller builds)")
    find_unused_parameters: bool = option(False, "DDP find_unused_parameters")
    progress: bool = option(True, "tqdm progress bars on rank 0 (only on a terminal)")
    tensorboard: bool = option(True, "write TensorBoard scalars under exp_dir/tensorboard")

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ConfigError(f"TrainerConfig.{name}={getattr(self, name)!r}: {why}")

        choices = {"optim": ("adam", "adamw", "sgd"), "scheduler": ("warmup_cosine", "noam", "constant"),
                   "amp": ("none", "bf16", "fp16"), "best_mode": ("min", "max")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                bad(name, f"must be one of {', '.join(valid)}")
        for name in ("max_epochs", "max_steps", "warmup_steps", "valid_interval", "save_interval",
                     "keep_last_k", "patience", "max_bad_batches", "num_workers"):
            if getattr(self, name) < 0:
                bad(name, "must not be negative")
        if self.max_epochs == 0 and self.max_steps == 0:
            bad("max_epochs", "set max_epochs or max_steps (both are 0: training would never stop)")
        for key, limit in self.stop_above.items():
            if isinstance(limit, bool) or not isinstance(limit, (int, float)):
                bad("stop_above", f"the limit of {key!r} must be a number")
        if self.grad_accum < 1:
            bad("grad_accum", "must be at least 1")
        if self.log_interval < 1:
            bad("log_interval", "must be at least 1")
        if self.lr <= 0:
            bad("lr", "must be positive")
        if self.grad_clip < 0:
            bad("grad_clip", "must not be negative")
        if not 0 <= self.ema_decay < 1:
            bad("ema_decay", "must be in [0, 1)")
        if self.scheduler == "noam" and self.warmup_steps == 0:
            bad("warmup_steps", "the noam schedule needs warmup_steps > 0")
        self.betas = tuple(float(b) for b in self.betas)
        if len(self.betas) != 2:
            bad("betas", "needs two values")


class NonFiniteLossError(RuntimeError):
    """A loss (or gradient norm) was NaN or infinite."""


# --------------------------------------------------------------------------- helpers


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in nested dicts/lists/tuples moved to ``device``; other values kept."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def get_rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA RNG states, in types ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    random.setstate(_as_tuple(state["python"]))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def build_optimizer(model: nn.Module, config: TrainerConfig) -> torch.optim.Optimizer:
    """Adam/AdamW/SGD over the trainable parameters; no weight decay on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if config.weight_decay > 0:
        groups: Any = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": params, "weight_decay": 0.0}]
    if config.optim == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    if config.optim == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def lr_factor(config: TrainerConfig, total_steps: int | None) -> Callable[[int], float]:
    """The LR multiplier used for update number ``s + 1`` (``s`` = completed updates)."""
    warmup = config.warmup_steps
    kind = config.scheduler
    min_ratio = config.min_lr / config.lr

    def factor(s: int) -> float:
        if kind == "noam":  # Vaswani et al. 2017, eq. (3), scaled so that the peak is lr
            return min((s + 1) / warmup, math.sqrt(warmup / (s + 1)))
        if warmup > 0 and s < warmup:
            return (s + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(max((s - warmup) / max(1, (total_steps or 1) - warmup), 0.0), 1.0)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainerConfig, total_steps: int | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LR schedule; ``total_steps`` is needed by ``warmup_cosine``.

    The schedule is a closure (not saved in checkpoints), so a resumed run follows the
    schedule of its own config, e.g. a longer one after ``max_steps`` was raised.
    """
    if config.scheduler == "warmup_cosine" and not total_steps:
        raise ConfigError("the warmup_cosine schedule needs the number of training steps (set max_steps)")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, total_steps))


def _to_float(key: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"compute_loss: stat {key!r} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().float().item())
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"compute_loss: stat {key!r} must be a number, got {type(value).__name__}") from e


class _Meter:
    """Weighted sums of stats; ``"weight"`` weights each batch (default 1)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weights: dict[str, float] = {}

    def add(self, stats: Mapping[str, float]) -> None:
        w = float(stats.get("weight", 1.0))
        for k, v in stats.items():
            if k == "weight":
                continue
            self.sums[k] = self.sums.get(k, 0.0) + v * w
            self.weights[k] = self.weights.get(k, 0.0) + w

    def merge(self, other: _Meter) -> None:
        for k, v in other.sums.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.weights[k] = self.weights.get(k, 0.0) + other.weights[k]

    def mean(self) -> dict[str, float]:
        return {k: self.sums[k] / self.weights[k] if self.weights[k] else float("nan") for k in self.sums}

    def __bool__(self) -> bool:
        return bool(self.sums)


def _fmt_stats(stats: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in stats.items())


def _accepts_kwarg(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


_END = object()


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Train ``model`` with ``compute_loss`` on ``train_loader``; see the module docstring.

    Args:
        model: the plain module (moved to ``device`` and wrapped in DDP here).
        train_loader: an iterable of batches re-iterated every epoch (a DataLoader; its
            sampler or batch sampler gets ``set_epoch``), or a callable ``epoch -> iterable``.
        valid_loader: an iterable of validation batches (this rank's share), or None.
        compute_loss: ``(model, batch) -> (loss, stats)`` (a scalar tensor and a dict).
        config: the :class:`TrainerConfig`.
        exp_dir: where logs, TensorBoard, ``checkpoints/`` and ``model.pt`` go.
        optimizer, scheduler: built from ``config`` unless given.
        resolved_config: the program's full resolved options (saved in every
            checkpoint, in ``model.pt`` and as ``exp_dir/config.yaml``).
        device: default: ``cuda:<local_rank>`` when available, else CPU.
    """

    def __init__(
        self,
        model: nn.Module,
        train_loader: Iterable[Any] | Callable[[int], Iterable[Any]],
        valid_loader: Iterable[Any] | None,
        compute_loss: Callable[[nn.Module, Any], Any],
        config: TrainerConfig,
        exp_dir: str | os.PathLike,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
        resolved_config: Mapping[str, Any] | Any | None = None,
        device: str | torch.device | None = None,
    ):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist_utils.is_dist():
            raise RuntimeError(
                "WORLD_SIZE > 1 but no process group: call ttsrl.train.distributed.init_distributed() "
                "before building the loaders and the Trainer"
            )
        self.config = config
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        self.rank = dist_utils.get_rank()
        self.world_size = dist_utils.get_world_size()
        self.is_main = self.rank == 0
        self.device = torch.device(device) if device is not None else dist_utils.get_device()
        self.compute_loss = compute_loss
        self.train_loader = train_loader
        self.valid_loader = valid_loader
        self._loader_is_factory = callable(train_loader) and not hasattr(train_loader, "__iter__")
        self.resolved_config = to_plain(resolved_config) if resolved_config is not None else None

        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
        self.amp_active = self.amp_dtype is not None and self.device.type == "cuda"
        if config.amp != "none" and not self.amp_active:
            logger.info("amp=%s is ignored on %s: training in float32", config.amp, self.device.type)

        self.model = model.to(self.device)
        # the EMA of the weights: a frozen copy of the model (never wrapped in DDP: the ranks' weights are equal)
        self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False) if config.ema_decay > 0 else None
        if self.world_size > 1:
            self.ddp_model: nn.Module = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=config.find_unused_parameters,
            )
        else:
            self.ddp_model = self.model
        self._comm_device = self.device if dist_utils.is_dist() and dist.get_backend() == "nccl" else torch.device("cpu")

        self.optimizer = optimizer if optimizer is not None else build_optimizer(self.model, config)
        if scheduler is None:
            total = self._total_steps() if config.scheduler == "warmup_cosine" else None
            scheduler = build_scheduler(self.optimizer, config, total)
        self.scheduler = scheduler
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_active and config.amp == "fp16")

        # position and bookkeeping (all saved in checkpoints)
        self.step = 0
        self.epoch = 1
        self.batch_idx = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.patience_count = 0
        self.bad_batches = 0
        self.last_valid: dict[str, float] = {}
        self._validated_step = -1
        self._saved_step = -1
        self._pending_rng: dict[str, Any] | None = None
        self._loader_generator: torch.Generator | None = None  # the generator the trainer gave the train loader
        self._writer: Any = None
        self._log_handler: logging.Handler | None = None
        self._interval_meter = _Meter()
        self._epoch_meter = _Meter()
        self._interval_start = time.time()
        self._interval_steps = 0
        self._last_lr = config.lr
        self._last_grad_norm = float("nan")
        set_seed(config.seed + self.rank)

    # ------------------------------------------------------------------ hooks

    def on_step_end(self, stats: dict[str, float]) -> None:
        """Called on every rank after each optimizer step with the step's stats."""

    def on_validation_end(self, stats: dict[str, float]) -> None:
        """Called on every rank after each validation with the averaged stats."""

    def extra_state(self) -> dict[str, Any]:
        """More state to checkpoint (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def rank_state(self) -> dict[str, Any]:
        """This rank's own state to checkpoint (called on every rank at every checkpoint; CPU tensors,
        numbers, strings, lists, dicts)."""
        return {}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`rank_state` returned on this rank (only when resuming with the same
        number of processes; otherwise it is not called)."""

    # ------------------------------------------------------------------ main loop

    def train(self) -> dict[str, Any]:
        """Train until max_steps / max_epochs / early stopping; return a summary.

        Resumes from the newest complete checkpoint under ``exp_dir/checkpoints``.
        """
        old_level = self._setup_logging()
        try:
            self._resume()
            if self.is_main:
                self._open_tensorboard()
                if self.resolved_config is not None:
                    dump_config(self.resolved_config, self.exp_dir / "config.yaml")
            n_params = sum(p.numel() for p in self.model.parameters())
            logger.info(
                "training %s (%.3fM parameters) on %s, %d process(es), amp %s, from step %d (epoch %d, batch %d)",
                type(self.model).__name__, n_params / 1e6, self.device, self.world_size,
                self.config.amp if self.amp_active else "none", self.step, self.epoch, self.batch_idx,
            )
            while not self._should_stop():
                self._train_epoch()
            self._finish()
        finally:
            self._close_logging(old_level)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "best_metric": self.config.best_metric,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "last_valid": dict(self.last_valid),
            "stopped_early": self.stopped_early,
            "bad_batches": self.bad_batches,
            "exp_dir": str(self.exp_dir),
            "model": str(self.exp_dir / "model.pt"),
        }

    def _should_stop(self) -> bool:
        c = self.config
        return (
            self.stopped_early
            or (c.max_steps > 0 and self.step >= c.max_steps)
            or (c.max_epochs > 0 and self.epoch > c.max_epochs)
        )

    def _train_epoch(self) -> None:
        c = self.config
        epoch = self.epoch
        it, total = self._epoch_iterator(epoch, self.batch_idx)
        if self._pending_rng is not None:
            # restored after the iterator exists: creating it may draw random numbers
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        self.model.train()
        self._epoch_meter = _Meter()
        group = _Meter()
        n_micro = 0
        finished = True
        bar = tqdm(
            total=total, initial=self.batch_idx, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True,
            disable=None if (self.is_main and c.progress) else True,
        )
        cur = next(it, _END)
        (done,) = self._sync_flags(cur is _END)
        while not done:
            self.batch_idx += 1
            batch = move_to_device(cur, self.device)
            loss, stats = self._forward(batch)
            local_bad = not bool(torch.isfinite(loss.detach()).item())
            cur = next(it, _END)
            bad, done = self._sync_flags(local_bad, cur is _END)
            sync_now = done or n_micro + 1 >= c.grad_accum
            if bad:
                self._bad_batch(loss, stats, batch, local_bad)
                if sync_now and n_micro > 0 and self.world_size > 1:
                    self._all_reduce_grads()  # earlier batches ran under no_sync
            else:
                ctx = self.ddp_model.no_sync() if self.world_size > 1 and not sync_now else contextlib.nullcontext()
                with ctx:
                    self.scaler.scale(loss / c.grad_accum).backward()
                n_micro += 1
                group.add(stats)
            del loss
            bar.update(1)
            if sync_now:
                stepped = n_micro > 0 and self._optimizer_step(n_micro)
                n_micro = 0
                if stepped:
                    self._after_step(group.mean(), group, bar)
                group = _Meter()
                if done:
                    break
                if self._should_stop():
                    finished = False
                    break
        bar.close()
        if finished:
            self._end_epoch(epoch)

    def _forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        ctx = (
            torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
            if self.amp_active
            else contextlib.nullcontext()
        )
        with ctx:
            out = self.compute_loss(self.ddp_model, batch)
        return self._check_output(out)

    @staticmethod
    def _check_output(out: Any) -> tuple[torch.Tensor, dict[str, float]]:
        loss, stats = out if isinstance(out, tuple) else (out, {})
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("compute_loss must return (scalar tensor loss, stats dict)")
        stats = {k: _to_float(k, v) for k, v in (stats or {}).items()}
        stats.setdefault("loss", float(loss.detach().float().item()))
        return loss.reshape(()), stats

    def _sync_flags(self, *flags: bool) -> list[bool]:
        """Each flag OR-ed over ranks, so that all ranks take the same branch."""
        if self.world_size == 1:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def _all_reduce_grads(self) -> None:
        for p in self.model.parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad.div_(self.world_size)

    def _bad_batch(self, loss: torch.Tensor, stats: Mapping[str, float], batch: Any, local: bool) -> None:
        self.bad_batches += 1
        where = f"step {self.step + 1} (epoch {self.epoch}, batch {self.batch_idx} of the epoch"
        where += f", rank {self.rank})" if self.world_size > 1 else ")"
        if local:
            utts = batch.get("utts") if isinstance(batch, Mapping) else None
            msg = f"non-finite loss {float(loss.detach().float().item())} at {where}"
            if utts is not None:
                utts = list(utts)
                shown = ", ".join(map(str, utts[:20])) + (f", ... ({len(utts)} in all)" if len(utts) > 20 else "")
                msg += f"; utts: {shown}"
            msg += f"; stats: {_fmt_stats(stats)}"
        else:
            msg = f"non-finite loss on another rank at {where}"
        limit = self.config.max_bad_batches
        if self.bad_batches > limit:
            raise NonFiniteLossError(f"{msg} [{self.bad_batches} bad batch(es), max_bad_batches={limit}]")
        logger.warning("skipping batch: %s [%d/%d bad batches allowed]", msg, self.bad_batches, limit)

    def _optimizer_step(self, n_micro: int) -> bool:
        c = self.config
        self.scaler.unscale_(self.optimizer)
        if n_micro != c.grad_accum:  # a short group (epoch end, skipped batch): make it a mean again
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(c.grad_accum / n_micro)
        max_norm = c.grad_clip if c.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_batches += 1
            msg = f"non-finite gradient norm {grad_norm} at step {self.step + 1} (epoch {self.epoch})"
            if self.bad_batches > c.max_bad_batches:
                raise NonFiniteLossError(f"{msg} [{self.bad_batches} bad batch(es), max_bad_batches={c.max_bad_batches}]")
            logger.warning("skipping update: %s", msg)
            return False
        self._last_lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)  # skipped by the scaler when fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        self._last_grad_norm = grad_norm
        if self.ema_model is not None:
            self._update_ema()
        return True

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the decay warms up as (1 + step) / (10 + step), so the first steps' weights do not linger
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        live = self.model.state_dict()
        for name, avg in self.ema_model.state_dict().items():
            if avg.is_floating_point():
                avg.lerp_(live[name], 1 - decay)
            else:
                avg.copy_(live[name])

    def _after_step(self, stats: dict[str, float], group: _Meter, bar: Any) -> None:
        c = self.config
        self._interval_meter.merge(group)
        self._epoch_meter.merge(group)
        self._interval_steps += 1
        stats = dict(stats, lr=self._last_lr, grad_norm=self._last_grad_norm)
        bar.set_postfix(step=self.step, loss=f"{stats.get('loss', float('nan')):.4g}", refresh=False)
        if self.step % c.log_interval == 0:
            self._log_train()
        self.on_step_end(stats)
        validate = self.valid_loader is not None and c.valid_interval > 0 and self.step % c.valid_interval == 0
        if validate:
            self._validate_and_track()  # checkpoints too
        elif c.save_interval > 0 and self.step % c.save_interval == 0:
            self._save_checkpoint()

    def _log_train(self) -> None:
        mean = self._interval_meter.mean()
        elapsed = max(time.time() - self._interval_start, 1e-9)
        rate = self._interval_steps / elapsed
        logger.info(
            "epoch %d step %d batch %d: %s lr %.3e grad_norm %.4g (%.2f steps/s)",
            self.epoch, self.step, self.batch_idx, _fmt_stats(mean), self._last_lr, self._last_grad_norm, rate,
        )
        if self._writer is not None:
            for k, v in mean.items():
                self._writer.add_scalar(f"train/{k}", v, self.step)
            self._writer.add_scalar("train/lr", self._last_lr, self.step)
            self._writer.add_scalar("train/grad_norm", self._last_grad_norm, self.step)
        self._interval_meter = _Meter()
        self._interval_start = time.time()
        self._interval_steps = 0

    def _end_epoch(self, epoch: int) -> None:
        if self._epoch_meter:
            logger.info("epoch %d done at step %d: train %s", epoch, self.step, _fmt_stats(self._epoch_meter.mean()))
        self.epoch = epoch + 1
        self.batch_idx = 0
        if self.valid_loader is not None and self.config.valid_interval == 0:
            self._validate_and_track()
        elif self._saved_step != self.step:
            self._save_checkpoint()

    def _finish(self) -> None:
        if self.valid_loader is not None and self.step > 0 and self._validated_step != self.step:
            self._validate_and_track()
        if self._saved_step != self.step:
            self._save_checkpoint()
        if self.stopped_early:
            over = self._over_limits(self.last_valid)
            if over:
                logger.info("stopped early: validation %s above stop_above %s", _fmt_stats(over),
                            self.config.stop_above)
            else:
                logger.info("stopped early: no better %s in %d validations", self.config.best_metric,
                            self.patience_count)
        if self.is_main:
            best = self.ckpt_dir / "best.pt"
            if self.best_step is not None and best.exists():
                try:
                    ckpt = load_checkpoint(best)
                except CheckpointError as e:  # a rerun would fail here every time: say what to do
                    raise CheckpointError(
                        f"{best}: cannot be read ({unreadable_reason(best, e.__cause__ or e)}), and model.pt is made "
                        f"from it (step {self.best_step}): delete it and rerun to make model.pt from the weights of "
                        f"step {self.step} instead, or delete {self.exp_dir} to retrain"
                    ) from e
                weights = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"]
                source = f"best.pt (step {self.best_step}, {self.config.best_metric} {self.best_value:.4g})"
            else:
                weights = (self.ema_model if self.ema_model is not None else self.model).state_dict()
                source = f"step {self.step}"
            if self.ema_model is not None:
                source += f", weights averaged with ema_decay {self.config.ema_decay}"
            save_checkpoint(
                {
                    "model": weights,
                    "config": self.resolved_config,
                    "trainer_config": asdict(self.config),
                    "step": self.best_step if self.best_step is not None else self.step,
                    "best": {"metric": self.config.best_metric, "value": self.best_value, "step": self.best_step},
                },
                self.exp_dir / "model.pt",
            )
            logger.info("wrote %s from %s", self.exp_dir / "model.pt", source)
        dist_utils.barrier()

    # ------------------------------------------------------------------ data

    def _epoch_iterator(self, epoch: int, skip: int) -> tuple[Iterator[Any], int | None]:
        loader = self.train_loader(epoch) if self._loader_is_factory else self.train_loader
        targets = []
        for obj in (loader, getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
            if obj is not None and hasattr(obj, "set_epoch") and all(obj is not t for t in targets):
                targets.append(obj)
        fast = False
        for obj in targets:
            if skip and not fast and _accepts_kwarg(obj.set_epoch, "start_batch"):
                obj.set_epoch(epoch, start_batch=skip)
                fast = True
            else:
                obj.set_epoch(epoch)
        if isinstance(loader, DataLoader) and (loader.generator is None or loader.generator is self._loader_generator):
            # worker seeds from (seed, epoch) rather than the global RNG: resuming stays exact (a generator
            # the caller gave the loader is left alone)
            seed = int(np.random.SeedSequence([self.config.seed, self.rank, epoch]).generate_state(1)[0])
            loader.generator = self._loader_generator = torch.Generator().manual_seed(seed)
        it = iter(loader)
        try:
            total: int | None = len(loader) + (skip if fast else 0)
        except TypeError:
            total = None
        if skip and not fast:
            logger.warning("resuming mid-epoch: reading and discarding %d batches", skip)
            for _ in range(skip):
                if next(it, _END) is _END:
                    break
        return it, total

    def _total_steps(self) -> int:
        c = self.config
        if c.max_steps > 0:
            return c.max_steps
        loader = self.train_loader(1) if self._loader_is_factory else self.train_loader
        try:
            n = len(loader)
        except TypeError as e:
            raise ConfigError("warmup_cosine needs max_steps when the train loader has no len()") from e
        return c.max_epochs * math.ceil(n / c.grad_accum)

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean stats of ``compute_loss`` over the validation data of all ranks (with the EMA
        weights when ``ema_decay > 0``)."""
        if self.valid_loader is None:
            return {}
        rng = get_rng_state()  # validation must not change the training's random stream
        # the same random draws at every validation (e.g. a flow model's times and noise), so that a
        # stochastic loss compares the steps' weights and not the draws
        set_seed(self.config.seed + self.rank)
        model = self.ema_model if self.ema_model is not None else self.model
        model.eval()
        meter = _Meter()
        ctx = (
            torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
            if self.amp_active
            else contextlib.nullcontext()
        )
        for batch in tqdm(self.valid_loader, desc="valid", leave=False,
                          disable=None if (self.is_main and self.config.progress) else True):
            with ctx:
                out = self.compute_loss(model, move_to_device(batch, self.device))
            _, stats = self._check_output(out)
            meter.add(stats)
        self.model.train()  # the EMA copy stays in eval mode
        set_rng_state(rng)
        total = _Meter()
        for m in dist_utils.all_gather_object(meter):
            total.merge(m)
        return total.mean()

    def _validate_and_track(self) -> None:
        c = self.config
        stats = self.validate()
        self.last_valid = stats
        self._validated_step = self.step
        if c.best_metric not in stats:
            raise KeyError(
                f"best_metric {c.best_metric!r} is not among the validation stats ({', '.join(stats) or 'none'})"
            )
        value = stats[c.best_metric]
        over = self._over_limits(stats)
        improved = not over and math.isfinite(value) and (
            self.best_value is None or (value < self.best_value if c.best_mode == "min" else value > self.best_value)
        )
        if improved:
            self.best_value, self.best_step = value, self.step
            self.patience_count = 0
        else:
            self.patience_count += 1
        logger.info(
            "validation at step %d (epoch %d): %s%s%s", self.step, self.epoch, _fmt_stats(stats),
            " (best)" if improved else f" (best {self.best_value} at step {self.best_step})",
            f" (above stop_above {c.stop_above}: stopping)" if over else "",
        )
        if self._writer is not None:
            for k, v in stats.items():
                self._writer.add_scalar(f"valid/{k}", v, self.step)
            self._writer.flush()
        self.on_validation_end(stats)
        self._save_checkpoint(is_best=improved)

    @property
    def stopped_early(self) -> bool:
        """Patience ran out, or the last validation is above a ``stop_above`` limit (derived from the
        state, so that a run resumed with a larger patience or a looser limit goes on)."""
        c = self.config
        return (c.patience > 0 and self.patience_count >= c.patience) or bool(self._over_limits(self.last_valid))

    def _over_limits(self, stats: dict[str, float]) -> dict[str, float]:
        """The stats of a validation above their ``stop_above`` limit (a limit on a missing stat is an error)."""
        missing = [k for k in self.config.stop_above if k not in stats]
        if stats and missing:
            raise KeyError(f"stop_above {missing} not among the validation stats ({', '.join(stats)})")
        return {k: stats[k] for k, limit in self.config.stop_above.items() if k in stats and stats[k] > limit}

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds except the RNG states (see :meth:`_save_checkpoint`)."""
        return {
            "version": CHECKPOINT_VERSION,
            **{key: copy.copy(getattr(self, attr)) for key, attr in _BOOKKEEPING.items()},
            "model": self.model.state_dict(),
            "ema": self.ema_model.state_dict() if self.ema_model is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "world_size": self.world_size,
            "config": self.resolved_config,
            "trainer_config": asdict(self.config),
            "best": {"metric": self.config.best_metric, "mode": self.config.best_mode,
                     "value": self.best_value, "step": self.best_step},
            "stopped_early": self.stopped_early,
            "extra": self.extra_state(),
        }

    def _save_checkpoint(self, is_best: bool = False) -> None:
        """Write ``checkpoints/step_<n>.pt`` (rank 0), update ``latest``/``best.pt``, prune.

        Collective: every rank calls it (each contributes its RNG state).
        """
        rng = dist_utils.all_gather_object(get_rng_state())
        ranks = dist_utils.all_gather_object(self.rank_state())
        if self.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            state = self.state_dict()
            state["rng"] = rng
            if any(ranks):  # optional: checkpoints of trainers without rank state lack it
                state["rank_state"] = ranks
            path = self.ckpt_dir / f"step_{self.step}.pt"
            save_checkpoint(state, path)
            atomic_write_text(self.ckpt_dir / "latest", path.name + "\n")
            if is_best:
                best = self.ckpt_dir / "best.pt"
                tmp = best.with_name("best.pt.tmp")
                tmp.unlink(missing_ok=True)
                try:
                    os.link(path, tmp)
                except OSError:
                    shutil.copyfile(path, tmp)
                os.replace(tmp, best)
            if self.config.keep_last_k > 0:
                for _, old in checkpoint_steps(self.ckpt_dir)[: -self.config.keep_last_k]:
                    old.unlink(missing_ok=True)
            logger.info("saved %s%s", path, " (best)" if is_best else "")
        self._saved_step = self.step
        dist_utils.barrier()

    def _resume(self) -> None:
        found = None
        if self.is_main and self.ckpt_dir.is_dir():
            for stale in self.ckpt_dir.glob("*.tmp"):  # a write cut short
                stale.unlink(missing_ok=True)
            found = find_resume_checkpoint(self.ckpt_dir, CHECKPOINT_KEYS, set_aside=True)
        path = dist_utils.broadcast_object(str(found[0]) if found else None)
        if path is None:
            logger.info("no checkpoint in %s: starting from scratch", self.ckpt_dir)
            return
        state = found[1] if found else load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        if self.ema_model is not None:
            ema = state.get("ema")
            if ema is None:  # a checkpoint of a run without EMA: the average starts here
                logger.warning("%s has no EMA of the weights: the average starts from its weights", path)
            self.ema_model.load_state_dict(ema if ema is not None else state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        for key, attr in _BOOKKEEPING.items():
            setattr(self, attr, copy.copy(state[key]))
        best = state["best"]
        if best["metric"] == self.config.best_metric and best["mode"] == self.config.best_mode:
            self.best_value, self.best_step = best["value"], best["step"]
        self._saved_step = self.step
        self.load_extra_state(state["extra"])
        rng = state["rng"]
        if state["world_size"] == self.world_size and len(rng) == self.world_size:
            self._pending_rng = rng[self.rank]
            ranks = state.get("rank_state")
            if ranks is not None and len(ranks) == self.world_size:
                self.load_rank_state(ranks[self.rank])
        else:
            logger.warning(
                "checkpoint written by %d process(es), now %d: restarting at the next epoch with fresh seeds",
                state["world_size"], self.world_size,
            )
            set_seed(self.config.seed + self.rank + self.step)
            if self.batch_idx > 0:
                self.epoch, self.batch_idx = self.epoch + 1, 0
        logger.info("resumed from %s: step %d, epoch %d, batch %d", path, self.step, self.epoch, self.batch_idx)

    # ------------------------------------------------------------------ logging

    def _setup_logging(self) -> int:
        pkg = logging.getLogger("ttsrl")
        old_level = pkg.level
        if pkg.getEffectiveLevel() > logging.INFO:
            pkg.setLevel(logging.INFO)
        if self.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self.exp_dir / "train.log", encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            pkg.addHandler(handler)
            self._log_handler = handler
        return old_level

    def _open_tensorboard(self) -> None:
        if not self.config.tensorboard:
            return
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run logged after the checkpoint we resume from
        self._writer = SummaryWriter(
            str(self.exp_dir / "tensorboard"), purge_step=self.step + 1 if self.step > 0 else None
        )

    def _close_logging(self, old_level: int) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        pkg = logging.getLogger("ttsrl")
        if self._log_handler is not None:
            pkg.removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        pkg.setLevel(old_level)
