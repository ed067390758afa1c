"""Vocoder task: a Vocos-style vocoder trained on waveform segments of Kaldi data dirs.

Usage::

    python -m ttsrl.bin.train_vocoder --config conf/vocoder/small.yaml \\
        --train_data data/train --valid_data data/dev --exp_dir exp/base/vocoder

The mel is computed from the audio inside the model with the features' front-end
(``model_conf`` holds the ``MelConfig`` fields), so no feature dump is needed. ``max_tokens``
counts mel frames (``--segment_frames`` per item). ``metrics.json``: ``dev_mel_l1``, the mean
|log-mel difference| between the first ``--eval_utts`` dev utterances and their
resynthesis, and ``dev_mel_l1_griffin_lim``, the same for Griffin-Lim as a reference.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from ttsrl.data.mel_dataset import WavSegmentDataset, collate_wavs
from ttsrl.models.vocoder import GriffinLim, VocosConfig, VocosVocoder
from ttsrl.tasks.base import Task
from ttsrl.train.trainer import move_to_device


class VocoderTask(Task):
    description = "Train a Vocos-style vocoder (log-mel -> waveform)."

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train_data", required=True, help="Kaldi data dir of the training set (wav.scp)")
        p.add_argument("--valid_data", required=True, help="Kaldi data dir of the validation set")
        p.add_argument("--segment_frames", type=int, default=64, help="mel frames per training segment")
        p.add_argument("--eval_utts", type=int, default=4, help="dev utterances resynthesized for metrics.json")

    def build_model(self, args: argparse.Namespace) -> VocosVocoder:
        conf = dict(args.model_conf)
        if "stft_resolutions" in conf:
            conf["stft_resolutions"] = tuple(conf["stft_resolutions"])
        cfg = VocosConfig(**conf)
        args.model_conf = dataclasses.asdict(cfg)
        args.model_conf["stft_resolutions"] = list(cfg.stft_resolutions)
        return VocosVocoder(cfg)

    def build_datasets(self, args):
        sr = args.model_conf.get("sample_rate", 16000)
        hop = args.model_conf.get("hop_length", 160)
        train = WavSegmentDataset(args.train_data, args.segment_frames, True, sr, hop)
        valid = WavSegmentDataset(args.valid_data, args.segment_frames, False, sr, hop)
        return train, valid, collate_wavs

    def compute_loss(self, model, batch):
        out = model(batch["wav"], batch["wav_lens"])
        return out.loss, {"loss": out.loss.detach(), **out.stats, "weight": batch["wav"].shape[0]}

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        device = next(model.parameters()).device
        cfg = model.config
        ds = WavSegmentDataset(args.valid_data, 0, False, cfg.sample_rate, cfg.hop_length,
                               utts=valid_loader.dataset.utts[: args.eval_utts])
        gl = GriffinLim(cfg.mel_config()).to(device)
        sums = {"dev_mel_l1": 0.0, "dev_mel_l1_griffin_lim": 0.0}
        frames = 0
        for i in range(len(ds)):
            wav = move_to_device(collate_wavs([ds[i]]), device)["wav"]
            mel, mel_lens = model.mel(wav)
            for key, voc in (("dev_mel_l1", model), ("dev_mel_l1_griffin_lim", gl)):
                y, y_lens = voc.mel_to_wav(mel, mel_lens)
                mel_hat, _ = model.mel(y, y_lens)
                T = min(mel_hat.shape[-1], mel.shape[-1])
                sums[key] += float((mel_hat[..., :T] - mel[..., :T]).abs().mean()) * T
            frames += T
        return {k: v / max(frames, 1) for k, v in sums.items()} | {"eval_utts": len(ds)}
