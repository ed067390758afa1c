"""Compute log-mel features of a data directory: feats.ark/scp, utt2num_frames, stats.npz.

Runs in one process; for parallel jobs split the data directory first
(utils/split_data.sh) and run one job per split, then merge the shards' stats with
ttsrl.feats.stats.merge_stats_files.

Usage:
    python -m ttsrl.bin.compute_feats --data_dir data/train --out_dir dump/feats/train --write_stats true
    python -m ttsrl.bin.compute_feats --data_dir data/dev --out_dir dump/feats/dev --hop_length 160 --n_mels 80
"""

from __future__ import annotations

import argparse
import dataclasses

from ttsrl.utils.cli import exit_on_bad_input, setup_logging
from ttsrl.utils.config import str2bool


def get_parser() -> argparse.ArgumentParser:
    from ttsrl.feats.mel import MelConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="Kaldi data directory with wav.scp")
    p.add_argument("--out_dir", required=True, help="where feats.ark/scp, utt2num_frames, stats.npz go")
    p.add_argument(
        "--write_stats", type=str2bool, nargs="?", const=True, default=False, help="also write stats.npz"
    )
    p.add_argument("--num_threads", type=int, default=1, help="torch threads (one per job, Kaldi-style)")
    p.add_argument("--fs", type=int, default=MelConfig.sample_rate, help="audio is resampled to this rate")
    for f in dataclasses.fields(MelConfig):
        if f.name != "sample_rate":
            kind = int if f.type == "int" else float
            p.add_argument(
                f"--{f.name}", type=kind, default=f.default, help=f"MelConfig.{f.name} (default %(default)s)"
            )
    return p


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging("INFO")
    import torch

    from ttsrl.feats.dump import dump_data_dir_feats
    from ttsrl.feats.mel import MelConfig

    torch.set_num_threads(args.num_threads)
    conf = {f.name: getattr(args, f.name) for f in dataclasses.fields(MelConfig) if f.name != "sample_rate"}
    exit_on_bad_input(lambda: dump_data_dir_feats(args.data_dir, args.out_dir, MelConfig(sample_rate=args.fs, **conf),
                                                  write_stats=args.write_stats))  # AudioError is a ValueError


if __name__ == "__main__":
    main()
