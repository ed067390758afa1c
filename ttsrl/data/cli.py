"""Shared plumbing of the data-dir entrypoints (ttsrl/bin/*): logging and error exits.

Usage (inside an entrypoint's ``main``)::

    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    return run_cli("fix_data_dir", lambda: fix_data_dir(args.data_dir))
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from ttsrl.data.datadir import DataDirError

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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


def split_names(value: str) -> tuple[str, ...]:
    """``"wav.scp text,utt2spk"`` -> ``("wav.scp", "text", "utt2spk")`` (for --required)."""
    return tuple(value.replace(",", " ").split())
