"""Speaker encoder training task: who is speaking, from log-mel (DMO's speaker-verification loss).

Trained on random crops of the training set's utterances with the AAM-softmax over its speakers
(``utt2spk`` of the data dir); validation is the same loss on the dev utterances of training
speakers (those of other speakers have no class; they still count in the EER). The final metric is
the dev equal-error rate over every pair of dev utterances (whole utterances, cosine scores).

Usage::

    python -m ttsrl.bin.train_speaker_encoder --config conf/speaker/small.yaml \\
        --train_data_dir data/train --train_feats dump/feats/train/feats.scp \\
        --valid_data_dir data/dev --valid_feats dump/feats/dev/feats.scp --exp_dir exp/base/speaker

The mel stats (``--stats``, default ``stats.npz`` next to ``--train_feats``) go into the model;
``max_tokens`` counts padded mel frames before cropping. ``metrics.json``: ``dev_eer`` (percent; null
when the dev set has no same-speaker pair, or no other pair), ``dev_trials``, ``dev_target_trials``,
``dev_speaker_acc`` (dev utterances of training speakers classified right),
``n_speakers``, ``num_params``, ``train_seconds``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time

import numpy as np
import torch

from ttsrl.data.datadir import read_kv, sorted_ids
from ttsrl.data.dataset import FramesDataset, UttDataset, collate_pad
from ttsrl.losses.speaker import aam_softmax_loss
from ttsrl.models.speaker_encoder import SpeakerEncoder, SpeakerEncoderConfig, crop_windows
from ttsrl.score.speaker import equal_error_rate, trial_scores
from ttsrl.tasks.base import Task
from ttsrl.train.trainer import move_to_device, unwrap_model

logger = logging.getLogger(__name__)


class SpeakerTask(Task):
    description = "Train the speaker encoder (AAM-softmax over the training speakers) on log-mel."

    def __init__(self) -> None:
        self._start = 0.0
        self.speakers: list[str] = []

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train_data_dir", required=True, help="data dir of the training set (utt2spk)")
        p.add_argument("--train_feats", required=True, help="feats.scp of the training set (dump/feats/<set>)")
        p.add_argument("--valid_data_dir", required=True, help="data dir of the validation set (utt2spk)")
        p.add_argument("--valid_feats", required=True, help="feats.scp of the validation set")
        p.add_argument("--stats", default=None, help="global mel stats (default: stats.npz next to --train_feats)")
        p.add_argument("--crop_frames", type=int, default=200, help="training crop of each utterance, mel frames")
        p.add_argument("--aam_margin", type=float, default=0.2, help="additive angular margin (radians)")
        p.add_argument("--aam_scale", type=float, default=30.0, help="scale of the AAM-softmax logits")

    def check_args(self, args: argparse.Namespace) -> None:
        if args.crop_frames < 10:
            raise ValueError(f"--crop_frames {args.crop_frames}: at least 10 frames")
        if not 0 <= args.aam_margin < 1.5 or args.aam_scale <= 0:
            raise ValueError(f"--aam_margin {args.aam_margin} must be in [0, 1.5) and --aam_scale {args.aam_scale} > 0")

    def build_model(self, args: argparse.Namespace) -> SpeakerEncoder:
        self._start = time.time()
        self.speakers = sorted_ids(set(read_kv(os.path.join(args.train_data_dir, "utt2spk")).values()))
        if len(self.speakers) < 2:
            raise ValueError(f"{args.train_data_dir}/utt2spk: {len(self.speakers)} speaker(s); a speaker encoder needs 2 or more")
        cfg = SpeakerEncoderConfig(**{**args.model_conf, "n_speakers": len(self.speakers)})
        args.model_conf = dataclasses.asdict(cfg)
        args.speakers = self.speakers  # saved with the resolved config: the classifier's rows
        model = SpeakerEncoder(cfg)
        stats = args.stats or os.path.join(os.path.dirname(args.train_feats), "stats.npz")
        try:
            model.set_stats(stats)
        except ValueError as e:
            raise ValueError(f"{stats}: {e}") from None
        return model

    def _dataset(self, data_dir: str, feats: str, known_only: bool) -> FramesDataset | None:
        utt2spk = read_kv(os.path.join(data_dir, "utt2spk"))
        index = {s: i for i, s in enumerate(self.speakers)}
        utts = sorted_ids(u for u, s in utt2spk.items() if s in index or not known_only)
        if not utts:
            return None
        labels = {u: np.array([index.get(utt2spk[u], -1)], dtype=np.int64) for u in utts}
        ds = UttDataset({"feats": feats, "spk": labels}, utts=utts)
        lens_file = os.path.join(os.path.dirname(feats), "utt2num_frames")
        return FramesDataset(ds, ds.lengths("feats", lens_file if os.path.isfile(lens_file) else None))

    def build_datasets(self, args):
        train = self._dataset(args.train_data_dir, args.train_feats, known_only=True)
        valid = self._dataset(args.valid_data_dir, args.valid_feats, known_only=True)
        if valid is None:
            logger.warning("%s: no utterance of a training speaker: no validation loss (the EER is still computed)",
                           args.valid_data_dir)
        self._crop = args.crop_frames
        self._aam = (args.aam_margin, args.aam_scale)
        return train, valid, collate_pad

    def compute_loss(self, model, batch):
        feats, lens = batch["feats"], batch["feats_lens"]
        if model.training:
            feats, lens = crop_windows(feats, torch.zeros_like(lens), lens, self._crop)
        emb = model(feats, lens)
        labels = batch["spk"][:, 0]
        cosines = unwrap_model(model).speaker_cosines(emb)  # (B, n_speakers)
        loss = aam_softmax_loss(cosines, labels, *self._aam)
        acc = (cosines.argmax(-1) == labels).float().mean()
        return loss, {"loss": loss.detach(), "acc": acc.detach(), "weight": len(labels)}

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        device = next(model.parameters()).device
        ds = self._dataset(args.valid_data_dir, args.valid_feats, known_only=False)
        spk = read_kv(os.path.join(args.valid_data_dir, "utt2spk"))
        embs, utts, right, known = [], [], 0, 0
        for i in range(len(ds)):
            item = move_to_device(collate_pad([ds[i]]), device)
            e = model(item["feats"], item["feats_lens"])
            embs.append(e[0].cpu().numpy())
            utts.append(item["utts"][0])
            label = int(item["spk"][0, 0])
            if label >= 0:
                known += 1
                right += int(int(model.speaker_cosines(e).argmax(-1)[0]) == label)
        scores, same = trial_scores(np.stack(embs), [spk[u] for u in utts])
        if same.all() or not same.any():  # e.g. one utterance per dev speaker: no same-speaker pair
            logger.warning("%s: %d same-speaker and %d other pairs: no equal-error rate", args.valid_data_dir,
                           int(same.sum()), int((~same).sum()))
            eer = None
        else:
            eer = round(100 * equal_error_rate(scores, same)[0], 3)
        return {"dev_eer": eer, "dev_trials": int(len(scores)), "dev_target_trials": int(same.sum()),
                "dev_speaker_acc": round(right / known, 4) if known else None,
                "n_speakers": len(self.speakers), "num_params": sum(p.numel() for p in model.parameters()),
                "train_seconds": round(time.time() - self._start, 1)}
