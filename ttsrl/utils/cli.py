"""What every entrypoint (ttsrl/bin/*) shares: logging, bad-input exits, the options of parallel jobs.

Usage (inside an entrypoint's ``main``)::

    setup_logging(args.log_level)                      # stderr, the ESPnet format
    return exit_on_bad_input(lambda: run(args))         # a ValueError/OSError: one ERROR line, exit 1
    add_job_args(parser)                                # --job K --num_jobs N (see ttsrl.utils.jobs)
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
T = TypeVar("T")


def setup_logging(level: str | int = "INFO") -> None:
    """Log to stderr in the ESPnet format."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)


def exit_on_bad_input(fn: Callable[[], T]) -> T:
    """``fn()``; bad input (a ValueError or OSError, whose message names the file or utterance) is one
    ERROR line and exit status 1 instead of a traceback."""
    try:
        return fn()
    except (ValueError, OSError) as e:
        logging.error("%s", e)
        raise SystemExit(1) from None


def add_job_args(p, items: str = "utterances") -> None:
    """``--job K --num_jobs N``: this process does job K's share of ``items`` (:func:`ttsrl.utils.jobs.job_share`)."""
    p.add_argument("--job", type=int, default=1, help="this job's index, 1-based (with --num_jobs)")
    p.add_argument("--num_jobs", type=int, default=1, help=f"split the {items} over this many jobs")
