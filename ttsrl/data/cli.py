"""Shared plumbing of the data-dir entrypoints (ttsrl/bin/*): error exits and option values.

Usage (inside an entrypoint's ``main``)::

    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)                   # ttsrl.utils.cli
    return run_cli("fix_data_dir", lambda: fix_data_dir(args.data_dir))
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from ttsrl.data.datadir import DataDirError


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
