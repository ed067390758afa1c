"""Dump the log-mel features of a data directory to a kaldiio ark/scp, with global stats.

``<out_dir>`` receives

===================  ========================================================
``feats.ark/.scp``   ``(T_frames, n_mels)`` float32 per utterance (Kaldi layout)
``utt2num_frames``   ``<utt> <T_frames>``
``mel_conf.yaml``    the resolved :class:`~ttsrl.feats.mel.MelConfig`
``stats.npz``        with ``write_stats``: global mean/std (:mod:`ttsrl.feats.stats`)
===================  ========================================================

every file written under a temporary name and renamed (a rerun first removes the temporary
files a killed run left). A JOB split runs this once per
``data/<set>/split<N>/<JOB>``; the shards' ``feats.scp`` are concatenated and their
``stats.npz`` merged with :func:`ttsrl.feats.stats.merge_stats_files`.

Usage::

    from ttsrl.feats.dump import dump_data_dir_feats
    dump_data_dir_feats("data/train", "dump/feats/train", write_stats=True)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np
import yaml
from tqdm import tqdm

from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.audio import AudioError, iter_data_dir_audio
from ttsrl.data.datadir import DataDir, DataDirError, write_kv
from ttsrl.feats.mel import MelConfig, MelExtractor
from ttsrl.feats.stats import FeatStats
from ttsrl.utils.fileio import atomic_write_text, remove_stale_temps

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("feats.ark", "feats.scp", "utt2num_frames", "mel_conf.yaml", "stats.npz")


def dump_data_dir_feats(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: MelConfig | None = None,
    write_stats: bool = False,
    progress: bool = True,
) -> int:
    """Compute and write the features of every utterance of ``data_dir``; returns the count.

    Raises :class:`~ttsrl.data.audio.AudioError` naming the utterance whose audio is
    missing, unreadable, empty or not finite; nothing is left half-written in ``out_dir``.
    """
    config = config or MelConfig()
    d = DataDir.load(data_dir)
    utts = d.utts
    if not utts:
        raise DataDirError(f"{data_dir}: no utterances")
    os.makedirs(out_dir, exist_ok=True)
    stale = remove_stale_temps(out_dir, OUTPUT_FILES)  # a killed run's half-written files
    if stale:
        logger.info("%s: removed %d temporary file(s) of an interrupted run", out_dir, len(stale))
    extractor = MelExtractor(config)
    stats = FeatStats(config.n_mels) if write_stats else None
    num_frames: dict[str, str] = {}

    def items() -> Iterator[tuple[str, np.ndarray]]:
        audio = iter_data_dir_audio(d, sample_rate=config.sample_rate)
        for utt in tqdm(utts, desc=f"mel {data_dir}", unit="utt", disable=not progress, mininterval=2.0):
            try:
                _, wav, _ = next(audio)
            except (DataDirError, KeyError) as e:  # AudioError is a DataDirError
                what = "no wav.scp/segments entry" if isinstance(e, KeyError) else str(e)
                raise AudioError(f"{data_dir}: utterance '{utt}': {what}") from None
            if wav.size == 0:
                raise AudioError(f"{data_dir}: utterance '{utt}': empty audio")
            if not np.isfinite(wav).all():
                raise AudioError(f"{data_dir}: utterance '{utt}': audio has NaN or infinite samples")
            feats = extractor.compute(wav)  # (T_frames, n_mels)
            num_frames[utt] = str(feats.shape[0])
            if stats is not None:
                stats.update(feats)
            yield utt, feats

    n = write_ark_scp(os.path.join(out_dir, "feats.ark"), os.path.join(out_dir, "feats.scp"), items())
    write_kv(os.path.join(out_dir, "utt2num_frames"), num_frames)
    atomic_write_text(
        os.path.join(out_dir, "mel_conf.yaml"), yaml.safe_dump(config.to_dict(), sort_keys=False)
    )
    if stats is not None:
        stats.save(os.path.join(out_dir, "stats.npz"))
    frames = sum(int(v) for v in num_frames.values())
    logger.info(
        "%s: %d utterances, %d frames (%.1f h) -> %s",
        data_dir,
        n,
        frames,
        frames / config.frame_rate / 3600,
        out_dir,
    )
    return n
