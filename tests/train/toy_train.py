"""A tiny training program driving ttsrl.train.Trainer, for the resume and DDP tests.

Usage:
    python toy_train.py resume --exp_dir DIR [--max_steps 30]     # writes DIR/losses.<pid>.txt
    torchrun --standalone --nproc_per_node 2 toy_train.py ddp --exp_dir DIR   # writes DIR/rank<r>.pt

``TOY_SLEEP=<seconds>`` slows every step down so that a test can kill the run mid-way.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ttsrl.train import distributed as dist_utils
from ttsrl.train.sampler import BucketBatchSampler
from ttsrl.train.trainer import Trainer, TrainerConfig, set_seed


class Mlp(nn.Module):
    def __init__(self, d_in: int = 4, d_hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d_hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(d_hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B,)
        return self.net(x).squeeze(-1)


class ToyData(torch.utils.data.Dataset):
    """Items ``{"utt", "x", "y", "length"}`` of a noisy linear function of x."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
        self.lengths = torch.randint(1, 11, (n,), generator=g).tolist()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"utt": f"utt{i:03d}", "x": self.x[i], "y": self.y[i]}


def collate(items: list[dict]) -> dict:
    return {
        "utts": [it["utt"] for it in items],
        "x": torch.stack([it["x"] for it in items]),
        "y": torch.stack([it["y"] for it in items]),
    }


def noisy_loss(model: nn.Module, batch: dict):
    """MSE against targets jittered by torch, numpy and python RNGs (all must be restored on resume)."""
    jitter = 1e-2 * torch.randn_like(batch["y"]) + 1e-3 * float(np.random.randn()) + 1e-3 * random.random()
    loss = F.mse_loss(model(batch["x"]), batch["y"] + jitter)
    return loss, {"loss": loss.detach(), "weight": len(batch["utts"])}


def plain_loss(model: nn.Module, batch: dict):
    loss = F.mse_loss(model(batch["x"]), batch["y"])
    return loss, {"loss": loss.detach(), "weight": len(batch["utts"])}


class RecordingTrainer(Trainer):
    """Appends ``step loss`` to a file after every step."""

    def __init__(self, *args, loss_file: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_file = loss_file
        self.sleep = float(os.environ.get("TOY_SLEEP", "0"))

    def on_step_end(self, stats):
        with open(self.loss_file, "a") as f:
            f.write(f"{self.step} {stats['loss']!r}\n")
        if self.sleep:
            time.sleep(self.sleep)


def resume_config(max_steps: int = 30) -> TrainerConfig:
    return TrainerConfig(
        max_epochs=0, max_steps=max_steps, lr=1e-2, optim="adamw", weight_decay=0.01,
        scheduler="warmup_cosine", warmup_steps=3, grad_accum=2, grad_clip=1.0,
        valid_interval=5, save_interval=3, keep_last_k=2, log_interval=4, seed=3,
        progress=False, tensorboard=False,
    )


def run_resume(exp_dir: str, max_steps: int = 30, loss_file: str | None = None) -> dict:
    """Shuffled token batches, dropout, grad accumulation: a run whose resume must be exact."""
    set_seed(0)
    model = Mlp()
    train = ToyData(48, seed=1)
    valid = ToyData(12, seed=2)
    train_loader = DataLoader(
        train, batch_sampler=BucketBatchSampler(train.lengths, max_tokens=40, shuffle=True, seed=5),
        collate_fn=collate,
    )
    valid_loader = DataLoader(
        valid, batch_sampler=BucketBatchSampler(valid.lengths, max_tokens=40, shuffle=False), collate_fn=collate
    )
    trainer = RecordingTrainer(
        model, train_loader, valid_loader, noisy_loss, resume_config(max_steps), exp_dir,
        loss_file=loss_file or os.path.join(exp_dir, f"losses.{os.getpid()}.txt"),
        resolved_config={"model": "mlp", "max_steps": max_steps},
    )
    return trainer.train()


def ddp_batches(rank: int, n_batches: int = 3, batch_size: int = 8, nan_at: tuple[int, int] | None = None) -> list:
    """Rank ``rank``'s training batches; ``nan_at=(rank, i)`` puts a NaN into that batch."""
    data = ToyData(n_batches * batch_size, seed=100 + rank)
    batches = []
    for i in range(n_batches):
        items = [data[j] for j in range(i * batch_size, (i + 1) * batch_size)]
        b = collate(items)
        b["utts"] = [f"r{rank}-{u}" for u in b["utts"]]
        if nan_at == (rank, i):
            b["x"][0, 0] = float("nan")
        batches.append(b)
    return batches


def ddp_config(**kw) -> TrainerConfig:
    base = dict(max_epochs=1, max_steps=2, lr=0.1, optim="sgd", scheduler="constant", max_bad_batches=1,
                valid_interval=1, keep_last_k=1, seed=0, progress=False, tensorboard=False)
    base.update(kw)
    return TrainerConfig(**base)


def run_ddp(exp_dir: str) -> None:
    """Rank r trains on its own batches (batch 1 of rank 1 holds a NaN and is skipped everywhere)."""
    dist_utils.init_distributed()
    rank = dist_utils.get_rank()
    set_seed(0)
    model = Mlp(dropout=0.0)
    train = ddp_batches(rank, nan_at=(1, 1))
    valid = [collate([ToyData(8, seed=7)[j] for j in range(3 + 2 * rank)])]  # 3 items on rank 0, 5 on rank 1
    trainer = Trainer(model, train, valid, plain_loss, ddp_config(), exp_dir)
    summary = trainer.train()
    torch.save(
        {"weights": {k: v.clone() for k, v in model.state_dict().items()}, "summary": summary,
         "world_size": dist_utils.get_world_size()},
        os.path.join(exp_dir, f"rank{rank}.pt"),
    )
    dist_utils.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["resume", "ddp"])
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--max_steps", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as in the tests' own process: the resumed and reference runs must match
    os.makedirs(args.exp_dir, exist_ok=True)
    if args.mode == "resume":
        run_resume(args.exp_dir, args.max_steps)
    else:
        run_ddp(args.exp_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
