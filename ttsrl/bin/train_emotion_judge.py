#!/usr/bin/env python3
"""Train the judge-side emotion classifier on ground-truth audio (stage 9; ttsrl.score.emotion).

Usage: python -m ttsrl.bin.train_emotion_judge --train_data_dir data/train --valid_data_dir data/dev \\
           [--test_data_dirs "data/test data/test_hard"] --out_dir exp/emotion_judge

Reads ``wav.scp`` (or segments) and ``utt2emo`` of each data dir. Writes ``out_dir/model.npz``
(what ``ttsrl-score --emo_judge`` loads) and ``out_dir/metrics.json``: ``train_acc``,
``valid_acc`` (and ``<set>_acc`` per test dir) as fractions, the validation confusion matrix
(rows: true emotion, columns: judged), the labels and the utterance counts. Features of each
set are cached in ``out_dir/feats_<set>.npz``; a second run reuses them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np

from ttsrl.data.audio import AudioError, load_audio
from ttsrl.data.datadir import DataDir, DataDirError
from ttsrl.feats.mel import MelConfig, MelExtractor
from ttsrl.score.asr import JUDGE_SAMPLE_RATE
from ttsrl.score.emotion import EmotionJudge, emotion_features
from ttsrl.utils.cli import setup_logging
from ttsrl.utils.fileio import atomic_path, atomic_write_text

logger = logging.getLogger("ttsrl.train_emotion_judge")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_data_dir", required=True, help="data dir with wav.scp and utt2emo (ground truth)")
    p.add_argument("--valid_data_dir", required=True, help="data dir for the reported accuracy")
    p.add_argument("--test_data_dirs", default="", help="more data dirs whose accuracy is reported (space-separated)")
    p.add_argument("--out_dir", required=True, help="where model.npz and metrics.json go")
    p.add_argument("--max_utts", type=int, default=0, help="use at most this many training utterances (0: all)")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    p.add_argument("--seed", type=int, default=0)
    return p


def load_set(data_dir: str, cache: str | None = None, max_utts: int = 0, seed: int = 0):
    """(features (N, F), emotions, utts) of a data dir; bad audio raises naming the utterance."""
    d = DataDir.load(data_dir)
    emo = d.labels.get("utt2emo")
    if not emo:
        raise DataDirError(f"{data_dir}: no utt2emo (the emotion judge learns from it)")
    utts = [u for u in d.utts if u in emo]
    if len(utts) < len(d.utts):
        logger.warning("%s: %d utterances without utt2emo are skipped", data_dir, len(d.utts) - len(utts))
    if max_utts and len(utts) > max_utts:
        utts = sorted(np.random.default_rng(seed).choice(utts, max_utts, replace=False).tolist())
    if cache and os.path.isfile(cache):
        z = np.load(cache)
        if [str(u) for u in z["utts"]] == utts:
            return z["feats"], [emo[u] for u in utts], utts
    from tqdm import tqdm

    feats, mel = [], MelExtractor(MelConfig(sample_rate=JUDGE_SAMPLE_RATE))
    for utt in tqdm(utts, desc=f"emotion features {os.path.basename(os.path.normpath(data_dir))}", unit="utt",
                    dynamic_ncols=True):
        path, seg = d.audio_spec(utt)
        try:
            wav, _ = load_audio(path, sample_rate=JUDGE_SAMPLE_RATE, segment=seg)
            feats.append(emotion_features(wav, JUDGE_SAMPLE_RATE, mel))
        except (AudioError, ValueError) as e:
            raise DataDirError(f"{data_dir}: utterance '{utt}': {e}") from None
    feats = np.stack(feats)
    if cache:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, feats=feats, utts=np.array(utts))
    return feats, [emo[u] for u in utts], utts


def accuracy(predicted: list[str], labels: list[str]) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging("INFO")
    os.makedirs(args.out_dir, exist_ok=True)
    cache = lambda d: os.path.join(args.out_dir, f"feats_{os.path.basename(os.path.normpath(d))}.npz")  # noqa: E731
    x, y, _ = load_set(args.train_data_dir, cache(args.train_data_dir), args.max_utts, args.seed)
    judge = EmotionJudge.fit(x, y, c=args.c, seed=args.seed)
    vx, vy, _ = load_set(args.valid_data_dir, cache(args.valid_data_dir))
    unknown = sorted(set(vy) - set(judge.labels))
    if unknown:
        raise SystemExit(f"{args.valid_data_dir}/utt2emo: emotions {unknown} are not in the training set")
    pred = judge.predict(vx)
    confusion = [[sum(1 for p, t in zip(pred, vy, strict=True) if t == a and p == b) for b in judge.labels] for a in judge.labels]
    metrics = {"labels": judge.labels, "train_acc": accuracy(judge.predict(x), y), "valid_acc": accuracy(pred, vy),
               "valid_confusion": confusion, "train_utts": len(y), "valid_utts": len(vy)}
    for d in args.test_data_dirs.split():
        tx, ty, _ = load_set(d, cache(d))
        metrics[f"{os.path.basename(os.path.normpath(d))}_acc"] = accuracy(judge.predict(tx), ty)
    judge.save(os.path.join(args.out_dir, "model.npz"))
    atomic_write_text(os.path.join(args.out_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    logger.info("emotion judge: %s", json.dumps({k: v for k, v in metrics.items() if k.endswith("acc")}))
    return 0


if __name__ == "__main__":
    main()
