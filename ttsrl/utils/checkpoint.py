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

__all__ = ["CheckpointError", "checkpoint_steps", "find_resume_checkpoint", "load_checkpoint", "load_model",
           "save_checkpoint"]

_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def save_checkpoint(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary name beside ``path``, flushed to disk, then renamed over it."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be read (cut short, empty, not written by torch.save);
    the message names the file and what to do."""


def unreadable_reason(path: str | os.PathLike, err: BaseException) -> str:
    """Why ``path`` could not be loaded, in a few words (torch's EOFError on an empty file has no message)."""
    try:
        if os.path.getsize(path) == 0:
            return "an empty file (0 bytes)"
    except OSError:
        pass
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by the Trainer (or a ``model.pt``) onto the CPU.

    A missing file raises FileNotFoundError; a file that cannot be read (a copy or a write cut
    short, a full disk) raises :class:`CheckpointError` naming it, instead of torch's bare
    ``OSError: [Errno 22]`` or a zip-reader traceback.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, unpickling error, I/O error
        raise CheckpointError(
            f"{path}: cannot be read as a checkpoint ({unreadable_reason(path, e)}); it was probably cut short "
            "(an interrupted copy or write, a full disk): copy or write it again, or delete it and rerun the "
            "stage that makes it"
        ) from e


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


BAD_SUFFIX = ".bad"


def find_resume_checkpoint(ckpt_dir: str | os.PathLike, required: Iterable[str] = (),
                           set_aside: bool = False) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint in ``ckpt_dir`` and its contents, or None.

    A checkpoint that cannot be read or lacks a key of ``required`` is skipped with a
    warning that says why (it was cut short, e.g. by a full disk). With ``set_aside`` it is
    also renamed to ``step_<n>.pt.bad``, so that it no longer counts as a step checkpoint:
    a broken ``step_999.pt`` would otherwise stay the "newest" forever and take one of the
    ``keep_last_k`` slots from the real ones.
    """
    required = tuple(required)
    for _, path in reversed(checkpoint_steps(ckpt_dir)):
        why = ""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, unpickling error, I/O error
            why = f"unreadable checkpoint {path} ({unreadable_reason(path, e)})"
        else:
            missing = [k for k in required if k not in state] if isinstance(state, dict) else ["a dict"]
            if missing:
                why = f"incomplete checkpoint {path} (missing {', '.join(missing)})"
        if not why:
            return path, state
        if set_aside:
            bad = path.with_name(path.name + BAD_SUFFIX)
            os.replace(path, bad)
            logger.warning("skipping %s: renamed to %s", why, bad.name)
        else:
            logger.warning("skipping %s", why)
    return None
