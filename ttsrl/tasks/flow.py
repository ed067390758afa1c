"""Flow-matching acoustic model task: speech tokens (stage 3) -> log-mel (stage 2).

Usage::

    python -m ttsrl.bin.train_flow --config conf/flow/small.yaml \\
        --train_dir dump/tokens/train --train_feats dump/feats/train/feats.scp \\
        --valid_dir dump/tokens/dev --valid_feats dump/feats/dev/feats.scp \\
        --speech_vocab_size 1000 --exp_dir exp/base/flow

The global mel stats (``--stats``, default ``stats.npz`` next to ``--train_feats``) are copied
into the model, so ``exp/base/flow/model.pt`` is all synthesis needs (:func:`ttsrl.models.flow.load_flow`).
``max_tokens`` counts mel frames. ``metrics.json``: ``dev_loss`` and, for the first
``--eval_utts`` dev utterances synthesized with NFE ``--eval_nfe`` from a prompt of their own
first third, ``dev_mel_l1`` (mean |log-mel difference|) and ``dev_mcd`` (an MCD-like distance
on 13 DCT cepstra of the log-mel, dB; frames are aligned by the tokens, so no DTW).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os

import numpy as np
import torch

from ttsrl.data.arrays import read_scp
from ttsrl.data.mel_dataset import TokenMelDataset, collate_token_mel
from ttsrl.feats.stats import FeatStats
from ttsrl.models.flow import FlowConfig, FlowMatching
from ttsrl.tasks.base import Task
from ttsrl.train.trainer import move_to_device


def _dct_matrix(n_in: int, n_out: int, device) -> torch.Tensor:
    k = torch.arange(n_out, device=device, dtype=torch.float32).unsqueeze(1)
    n = torch.arange(n_in, device=device, dtype=torch.float32).unsqueeze(0)
    m = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m  # (n_out, n_in), orthonormal DCT-II rows


def mel_distances(mel_hat: torch.Tensor, mel: torch.Tensor, n_ceps: int = 13) -> tuple[float, float]:
    """(mean |difference|, MCD-like dB) of two aligned (C, T) natural-log mels; c0 (energy) is left out of the MCD."""
    d = _dct_matrix(mel.shape[0], n_ceps + 1, mel.device)
    c_hat, c = d @ mel_hat, d @ mel  # (n_ceps + 1, T)
    diff = (c_hat[1:] - c[1:]) ** 2
    mcd = (10.0 / math.log(10.0)) * torch.sqrt(2.0 * diff.sum(0)).mean()
    return float((mel_hat - mel).abs().mean()), float(mcd)


class FlowTask(Task):
    description = "Train the flow-matching acoustic model (speech tokens -> mel)."

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train_dir", required=True, help="token dir of the training set (dump/tokens/<set>, speech.scp)")
        p.add_argument("--train_feats", required=True, help="feats.scp of the training set (dump/feats/<set>)")
        p.add_argument("--valid_dir", required=True, help="token dir of the validation set")
        p.add_argument("--valid_feats", required=True, help="feats.scp of the validation set")
        p.add_argument("--stats", default=None, help="global mel stats (default: stats.npz next to --train_feats)")
        p.add_argument("--speech_vocab_size", type=int, required=True, help="the speech tokenizer's codebook size")
        p.add_argument("--train_spk_scp", default=None, help="optional per-utterance speaker embeddings (train)")
        p.add_argument("--valid_spk_scp", default=None, help="speaker embeddings of the validation set")
        p.add_argument("--eval_utts", type=int, default=4, help="dev utterances synthesized for metrics.json")
        p.add_argument("--eval_nfe", type=int, default=10, help="ODE steps (Euler) of that synthesis")

    def build_model(self, args: argparse.Namespace) -> FlowMatching:
        conf = {**args.model_conf, "vocab_size": args.speech_vocab_size}
        if args.train_spk_scp and not conf.get("spk_embed_dim"):
            first = next(iter(read_scp(args.train_spk_scp).values()))
            conf["spk_embed_dim"] = int(np.asarray(first).size)
        cfg = FlowConfig(**conf)
        args.model_conf = dataclasses.asdict(cfg)  # the complete config goes into model.pt
        model = FlowMatching(cfg)
        stats = args.stats or os.path.join(os.path.dirname(args.train_feats), "stats.npz")
        acc = FeatStats.load(stats)
        if acc.dim != cfg.n_mels:
            raise ValueError(f"{stats}: {acc.dim}-dim stats for a model of n_mels={cfg.n_mels}")
        model.set_stats(acc.mean, acc.std)
        return model

    def build_datasets(self, args):
        tf = args.model_conf.get("token_frames", 4)
        train = TokenMelDataset(args.train_dir, args.train_feats, args.train_spk_scp, token_frames=tf)
        valid = TokenMelDataset(args.valid_dir, args.valid_feats, args.valid_spk_scp, token_frames=tf)
        return train, valid, collate_token_mel

    def compute_loss(self, model, batch):
        out = model(batch["speech"], batch["speech_lens"], batch["mel"], batch["mel_lens"], spk=batch.get("spk"))
        return out.loss, {"loss": out.loss.detach(), "weight": out.n_frames}

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        device = next(model.parameters()).device
        g = torch.Generator(device=device).manual_seed(0)
        loss = frames = 0.0
        for batch in valid_loader:  # eval mode: no prompt, no CFG drop; fixed noise and times
            batch = move_to_device(batch, device)
            out = model(batch["speech"], batch["speech_lens"], batch["mel"], batch["mel_lens"],
                        spk=batch.get("spk"), generator=g)
            loss += float(out.loss) * int(out.n_frames)
            frames += int(out.n_frames)
        metrics = {"dev_loss": loss / max(frames, 1)}
        ds = valid_loader.dataset
        l1s, mcds = [], []
        tf = model.config.token_frames
        for i in range(min(args.eval_utts, len(ds))):
            item = move_to_device(collate_token_mel([ds[i]]), device)
            L = int(item["speech_lens"][0])
            p = L // 3
            mel_hat, _ = model.synthesize(item["speech"][:, p:], item["speech_lens"] - p,
                                          item["speech"][:, :p], item["mel"][:, :, :p * tf], spk=item.get("spk"),
                                          n_steps=args.eval_nfe, generator=g)
            l1, mcd = mel_distances(mel_hat[0], item["mel"][0, :, p * tf:L * tf])
            l1s.append(l1)
            mcds.append(mcd)
        if l1s:
            metrics.update(dev_mel_l1=float(np.mean(l1s)), dev_mcd=float(np.mean(mcds)),
                           eval_nfe=args.eval_nfe, eval_utts=len(l1s))
        return metrics
