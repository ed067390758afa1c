"""Shared plumbing of the data-dir entrypoints (ttsrl/bin/*): logging and error exits.

Usage (inside an entrypoint's ``main``)::

    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    return run_cli("fix_data_dir", lambda: fix_data_dir(args.data_dir))
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from ttsrl.data.datadir import DataDirError

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
T = TypeVar("T")


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr in the ESPnet format."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)


def run_cli(prog: str, fn: Callable[[], object]) -> int:
    """Call ``fn``; on bad input print ``<prog>: error: <message>`` to stderr and return 1."""
    try:
        fn()
    except (DataDirError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


def add_job_args(p, items: str = "utterances") -> None:
    """``--job K --num_jobs N``: this process does job K's share of ``items`` (see :func:`job_share`)."""
    p.add_argument("--job", type=int, default=1, help="this job's index, 1-based (with --num_jobs)")
    p.add_argument("--num_jobs", type=int, default=1, help=f"split the {items} over this many jobs")


def job_share(items: Sequence[T], job: int, num_jobs: int, error: type[BaseException] = SystemExit) -> Sequence[T]:
    """Job ``job``'s share of ``items`` (1-based): every ``num_jobs``-th from the ``job``-th."""
    if not 1 <= job <= num_jobs:
        raise error(f"--job {job} must be in 1..{num_jobs}")
    return items[job - 1 :: num_jobs]


def job_suffix(job: int, num_jobs: int) -> str:
    """``.K`` naming job K's output lists when there are several jobs (``""`` for one)."""
    return f".{job}" if num_jobs > 1 else ""


def split_names(value: str) -> tuple[str, ...]:
    """``"wav.scp text,utt2spk"`` -> ``("wav.scp", "text", "utt2spk")`` (for --required)."""
    return tuple(value.replace(",", " ").split())
