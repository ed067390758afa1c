"""The split of a set over parallel jobs (``--job K --num_jobs N`` of an entrypoint, ``JOB=1:N`` of run.pl).

Usage::

    utts = job_share(all_utts, job, num_jobs)          # every N-th from the K-th (1-based)
    out = f"wav{job_suffix(job, num_jobs)}.scp"         # wav.K.scp (wav.scp for one job)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def job_share(items: Sequence[T], job: int, num_jobs: int, error: type[BaseException] = SystemExit) -> Sequence[T]:
    """Job ``job``'s share of ``items`` (1-based): every ``num_jobs``-th from the ``job``-th."""
    if not 1 <= job <= num_jobs:
        raise error(f"--job {job} must be in 1..{num_jobs}")
    return items[job - 1 :: num_jobs]


def job_suffix(job: int, num_jobs: int) -> str:
    """``.K`` naming job K's output lists when there are several jobs (``""`` for one)."""
    return f".{job}" if num_jobs > 1 else ""
