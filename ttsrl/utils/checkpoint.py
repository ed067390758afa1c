"""Checkpoint files: atomic saving, loading on the CPU, the newest complete one, a model from its ``model.pt``.

The files are those :class:`ttsrl.train.trainer.Trainer` writes (``checkpoints/step_<n>.pt``,
``best.pt``, ``model.pt``); their contents are documented there. Model files rebuild their
model with :func:`load_model` (each model file has its own ``load_*`` built on it), so that
loading a model needs nothing from training.

Usage::

    from ttsrl.utils.checkpoint import load_checkpoint, load_model, save_checkpoint

    save_checkpoint({"model": model.state_dict(), "config": {...}}, "exp/x/model.pt")
    state = load_checkpoint("exp/x/model.pt")                  # on the CPU, weights_only
    model = load_model("exp/x", Mlp, MlpConfig, "MLP")           # config from model_conf; eval mode
    found = find_resume_checkpoint("exp/x/checkpoints", required=("model", "step"))
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ttsrl.utils.config import build_dataclass
from ttsrl.utils.fileio import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["checkpoint_steps", "find_resume_checkpoint", "load_checkpoint", "load_model", "save_checkpoint"]

_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary name beside ``path``, flushed to disk, then renamed over it."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by the Trainer (or a ``model.pt``) onto the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path: str | os.PathLike, model_cls: type, config_cls: type, what: str,
               device: str | torch.device = "cpu", require: str | None = None) -> nn.Module:
    """Rebuild a trained model from ``<path>/model.pt`` (or the file ``path``): the saved
    ``model_conf`` builds ``config_cls`` (unknown keys are an error), ``model_cls(config)`` takes
    the weights; eval mode on ``device``. ``what`` names the model in errors; ``require`` is a
    ``model_conf`` key without which the file is not this kind of model."""
    path = Path(path)
    ckpt_path = path / "model.pt" if path.is_dir() else path
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{what} not found: {ckpt_path}")
    ckpt = load_checkpoint(ckpt_path)
    conf = (ckpt.get("config") or {}).get("model_conf") if isinstance(ckpt, Mapping) else None
    if not isinstance(conf, Mapping) or (require is not None and require not in conf):
        needed = f"model_conf with a {require}" if require else "model_conf"
        raise ValueError(f"{ckpt_path}: no {needed} in the saved config; not a {what}")
    model = model_cls(build_dataclass(config_cls, conf, f"{ckpt_path}: model_conf"))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


def checkpoint_steps(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step_<n>.pt`` in ``ckpt_dir``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = _STEP_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def find_resume_checkpoint(ckpt_dir: str | os.PathLike,
                           required: Iterable[str] = ()) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint in ``ckpt_dir`` and its contents, or None.

    A checkpoint that cannot be read or lacks a key of ``required`` is skipped with a
    warning (it was cut short, e.g. by a full disk).
    """
    required = tuple(required)
    for _, path in reversed(checkpoint_steps(ckpt_dir)):
        try:
            state = load_checkpoint(path)
        except Exception as e:  # truncated zip, unpickling error, I/O error
            logger.warning("skipping unreadable checkpoint %s: %s", path, str(e).splitlines()[0] if str(e) else e)
            continue
        missing = [k for k in required if k not in state] if isinstance(state, dict) else ["*"]
        if missing:
            logger.warning("skipping incomplete checkpoint %s (missing %s)", path, ", ".join(missing))
            continue
        return path, state
    return None
