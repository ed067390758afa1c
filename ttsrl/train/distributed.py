"""Distributed setup: torchrun or Slurm ``srun`` -> a torch.distributed process group.

One machine, N GPUs (or N CPU processes)::

    torchrun --nproc_per_node N -m ttsrl.bin.train_lm ...

Several machines under Slurm, one task per GPU (``MASTER_ADDR`` is the first node of the
job step, ``MASTER_PORT`` is derived from the job id unless set)::

    srun --ntasks-per-node 4 --gpus-per-task 1 python -m ttsrl.bin.train_lm ...

Usage in an entrypoint::

    from ttsrl.train import distributed as dist_utils

    info = dist_utils.init_distributed()          # no-op for a single process
    device = dist_utils.get_device(args.ngpu)     # cuda:<local_rank> or cpu
    ...
    if dist_utils.is_main():
        print("only once")
    dist_utils.cleanup()

The backend is NCCL when CUDA is available and gloo otherwise; rendezvous is
``env://`` (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

__all__ = [
    "DistInfo",
    "all_gather_object",
    "barrier",
    "broadcast_object",
    "cleanup",
    "get_device",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "inference_device",
    "init_distributed",
    "is_dist",
    "is_main",
    "slurm_first_host",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def slurm_first_host(nodelist: str) -> str:
    """The first host of a Slurm node list such as ``gpu[03-05,09],cpu1`` (-> ``gpu03``).

    Uses ``scontrol show hostnames`` when available, else parses the list itself.
    """
    try:
        out = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return _parse_first_host(nodelist)


def _parse_first_host(nodelist: str) -> str:
    nodelist = nodelist.strip()
    # first comma outside brackets ends the first host group
    depth, end = 0, len(nodelist)
    for i, c in enumerate(nodelist):
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "," and depth == 0:
            end = i
            break
    group = nodelist[:end]
    m = re.match(r"^([^\[]*)\[([^\]]*)\](.*)$", group)
    if not m:
        return group
    prefix, ranges, suffix = m.groups()
    first = ranges.split(",")[0].split("-")[0]
    return _parse_first_host(prefix + first + suffix) if "[" in suffix else prefix + first + suffix


def _env_int(name: str, default: int | None = None) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _from_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's or Slurm's variables, else (0, 1, 0)."""
    if _env_int("WORLD_SIZE") is not None and _env_int("RANK") is not None:
        return _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK", 0)
    # srun sets SLURM_STEP_NUM_TASKS for the step (an sbatch script itself is not a
    # multi-task step: starting training there with --ntasks > 1 would wait forever).
    ntasks = _env_int("SLURM_STEP_NUM_TASKS", _env_int("SLURM_NTASKS", 1))
    if _env_int("SLURM_PROCID") is not None and _env_int("SLURM_STEP_ID") is not None and ntasks > 1:
        return _env_int("SLURM_PROCID"), ntasks, _env_int("SLURM_LOCALID", 0)
    return 0, 1, 0


def init_distributed(backend: str | None = None, timeout_minutes: float = 30.0) -> DistInfo:
    """Join the process group described by the environment (torchrun or srun).

    A single process (no launcher, or a world of 1) gets no process group. Safe to call
    twice. Under Slurm, ``MASTER_ADDR`` defaults to the first node of the step and
    ``MASTER_PORT`` to ``15000 + SLURM_JOB_ID % 20000``.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(get_rank(), get_world_size(), get_local_rank(), dist.get_backend())
    rank, world_size, local_rank = _from_env()
    if world_size <= 1:
        return DistInfo()
    if "WORLD_SIZE" not in os.environ:  # srun: export what env:// rendezvous reads
        nodelist = (
            os.environ.get("SLURM_STEP_NODELIST")
            or os.environ.get("SLURM_JOB_NODELIST")
            or os.environ.get("SLURM_NODELIST")
        )
        if "MASTER_ADDR" not in os.environ:
            if not nodelist:
                raise RuntimeError("Slurm job without SLURM_JOB_NODELIST: set MASTER_ADDR")
            os.environ["MASTER_ADDR"] = slurm_first_host(nodelist)
        os.environ.setdefault("MASTER_PORT", str(15000 + _env_int("SLURM_JOB_ID", 0) % 20000))
        os.environ["RANK"] = str(rank)
        os.environ["WORLD_SIZE"] = str(world_size)
        os.environ["LOCAL_RANK"] = str(local_rank)
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(minutes=timeout_minutes),
    )
    logger.info(
        "joined process group: rank %d/%d (local rank %d), backend %s, master %s:%s",
        rank, world_size, local_rank, backend,
        os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT"),
    )
    return DistInfo(rank, world_size, local_rank, backend)


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def get_local_rank() -> int:
    if is_dist():
        return _env_int("LOCAL_RANK", _env_int("SLURM_LOCALID", 0))
    return 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that logs and writes."""
    return get_rank() == 0


def get_device(ngpu: int | None = None, local_rank: int | None = None) -> torch.device:
    """The device this process trains on.

    ``ngpu=None`` picks CUDA when available; ``ngpu=0`` forces CPU; ``ngpu>0`` without
    CUDA is an error. With several processes on a node each takes GPU ``local_rank``
    (modulo the visible GPUs, for launchers that bind one GPU per task).
    """
    if ngpu == 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if ngpu is not None and ngpu > 0:
            raise RuntimeError(f"--ngpu {ngpu} was requested but CUDA is not available (use --ngpu 0)")
        return torch.device("cpu")
    if local_rank is None:
        local_rank = get_local_rank()
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def inference_device(ngpu: int | None = None, num_threads: int = 0) -> torch.device:
    """The prologue of an entrypoint that runs a model without training it: torch's CPU threads
    (``num_threads > 0``) and the device of :func:`get_device`."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    return get_device(ngpu)


def barrier() -> None:
    if is_dist():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def cleanup() -> None:
    """Leave the process group (call at the end of main), once every rank is done with it.

    Without the barrier a rank that finished first tore its gloo pairs down while the other
    was still writing its results, and died with SIGABRT ("terminate called without an active
    exception"), failing a run that had trained (seen in 1 of 3 two-process GRPO runs).
    """
    if is_dist():
        barrier()
        dist.destroy_process_group()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
