"""DMO task: distil the flow model of stage 4 into a few-step student (``ttsrl.align.dmo``).

Usage::

    python -m ttsrl.bin.train_dmo --config conf/dmo/small.yaml --teacher exp/base/flow \\
        --tokenizer_dir exp/tokenizer --speaker_encoder exp/base/speaker \\
        --train_dir dump/tokens/train --train_feats dump/feats/train/feats.scp --train_data_dir data/train \\
        --valid_dir dump/tokens/dev --valid_feats dump/feats/dev/feats.scp --valid_data_dir data/dev \\
        --exp_dir exp/base/flow_dmo

The recognizer of the CTC loss is the speech tokenizer's CTC head on mel (not the judge); its
units encode each utterance's text (``<data_dir>/text``). The speaker encoder
(``ttsrl.bin.train_speaker_encoder``, not the SIM judge) is needed with ``--sv_weight > 0`` and
measures ``sim`` whenever it is given. ``max_tokens`` counts mel frames.

Outputs: ``model.pt`` (the student and the fake score model, best by the dev ``ctc``),
``student/model.pt`` (the student alone, a flow model: ``load_flow`` and ``ttsrl.bin.synthesize
--flow exp/base/flow_dmo/student --flow_solver renoise --flow_n_steps <student_steps>
--flow_cfg_scale 0`` read it) and ``metrics.json``: for the first ``--eval_utts`` dev utterances
(prompt: their first third), the student (``student_*``, renoise sampler, its steps, no guidance)
and the teacher at ``--eval_teacher_nfe`` Euler steps with guidance ``teacher_cfg`` (``teacher_*``):
``cer`` (recognizer greedy transcript, %), ``ctc``, ``sim``, ``mel_l1`` and ``seconds``, and
``speedup`` = teacher seconds / student seconds.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time

import numpy as np
import torch
from torch.utils.data import Dataset

from ttsrl.align.dmo import DMOLoss, DMOModel, DMOOptions, evaluate_mel, student_flow_state
from ttsrl.data.datadir import read_kv
from ttsrl.data.mel_dataset import TokenMelDataset, collate_token_mel
from ttsrl.data.token_dataset import pad_1d
from ttsrl.models.flow import load_flow
from ttsrl.models.speaker_encoder import load_speaker_encoder
from ttsrl.models.speech_tokenizer import SpeechTokenizer, load_ctc_tokenizer
from ttsrl.tasks.base import Task
from ttsrl.train import distributed as du
from ttsrl.train.trainer import move_to_device
from ttsrl.utils.checkpoint import load_checkpoint, save_checkpoint
from ttsrl.utils.config import add_dataclass_args, dataclass_from_args

logger = logging.getLogger(__name__)


class TextTokenMelDataset(Dataset):
    """:class:`TokenMelDataset` items with ``text``: the utterance's text in the recognizer's units."""

    def __init__(self, base: TokenMelDataset, text_ids: dict[str, list[int]]):
        missing = [u for u in base.utts if u not in text_ids]
        if missing:
            raise ValueError(f"{base.token_dir}: no text for {len(missing)} utterance(s), e.g. {missing[:3]}")
        self.base, self.text_ids, self.utts, self.lengths = base, text_ids, base.utts, base.lengths

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = self.base[i]
        item["text"] = torch.tensor(self.text_ids[item["utt"]], dtype=torch.long)
        return item


def collate_text_token_mel(items: list[dict]) -> dict:
    batch = collate_token_mel(items)
    batch["text"], batch["text_lens"] = pad_1d([it["text"] for it in items])
    return batch


class DMOTask(Task):
    description = "Distil the flow model into a few-step student (DMD) trained through CTC and speaker losses (DMO)."

    def __init__(self) -> None:
        self.opts: DMOOptions | None = None
        self.loss_fn: DMOLoss | None = None
        self._start = 0.0

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--teacher", required=True, help="the flow model of stage 4 (model.pt or its folder)")
        p.add_argument("--tokenizer_dir", required=True,
                       help="speech tokenizer folder: its CTC head on mel is the recognizer (and its units the text's)")
        p.add_argument("--speaker_encoder", default=None,
                       help="speaker encoder folder (ttsrl.bin.train_speaker_encoder); needed with --sv_weight > 0")
        for split in ("train", "valid"):
            p.add_argument(f"--{split}_dir", required=True, help=f"token dir of the {split} set (speech.scp)")
            p.add_argument(f"--{split}_feats", required=True, help=f"feats.scp of the {split} set")
            p.add_argument(f"--{split}_data_dir", required=True, help=f"data dir of the {split} set (text)")
        p.add_argument("--eval_utts", type=int, default=16, help="dev utterances of metrics.json")
        p.add_argument("--eval_teacher_nfe", type=int, default=10, help="Euler steps of the teacher in metrics.json")
        add_dataclass_args(p, DMOOptions, group="dmo")

    def check_args(self, args: argparse.Namespace) -> None:
        self.opts = dataclass_from_args(DMOOptions, args)
        if self.opts.sv_weight > 0 and not args.speaker_encoder:
            raise ValueError("--sv_weight > 0 needs --speaker_encoder")
        for path in (args.teacher, args.tokenizer_dir, args.speaker_encoder):
            if path and not os.path.exists(path):
                raise ValueError(f"not found: {path}")

    def build_model(self, args: argparse.Namespace) -> DMOModel:
        self._start = time.time()
        teacher = load_flow(args.teacher)
        args.model_conf = dataclasses.asdict(teacher.config)  # the student's config (student/model.pt)
        self._teacher = teacher
        return DMOModel.from_teacher(teacher)

    def _dataset(self, args, split: str) -> TextTokenMelDataset:
        tok = load_ctc_tokenizer(args.tokenizer_dir)
        texts = read_kv(os.path.join(getattr(args, f"{split}_data_dir"), "text"))
        base = TokenMelDataset(getattr(args, f"{split}_dir"), getattr(args, f"{split}_feats"),
                               token_frames=self._teacher.config.token_frames)
        ids = dict(zip(base.utts, tok.encode_batch([texts.get(u, "") for u in base.utts]), strict=True))
        empty = [u for u in base.utts if not ids[u]]
        if empty:
            raise ValueError(f"{getattr(args, f'{split}_data_dir')}/text: no text (in the tokenizer's units) "
                             f"for {len(empty)} utterance(s), e.g. {empty[:3]}")
        return TextTokenMelDataset(base, ids)

    def build_datasets(self, args):
        return self._dataset(args, "train"), self._dataset(args, "valid"), collate_text_token_mel

    def setup(self, args, model, train, valid, device) -> None:
        recognizer = SpeechTokenizer.from_pretrained(args.tokenizer_dir)
        speaker = load_speaker_encoder(args.speaker_encoder) if args.speaker_encoder else None
        self.loss_fn = DMOLoss(self.opts, self._teacher, recognizer, speaker).to(device)

    def compute_loss(self, model, batch):
        return self.loss_fn(model, batch)

    def final_metrics(self, args, trainer, valid_loader) -> dict:
        if not du.is_main():
            return {}
        model = trainer.model
        model.load_state_dict(load_checkpoint(os.path.join(args.exp_dir, "model.pt"))["model"])
        model.eval()
        out = os.path.join(args.exp_dir, "student", "model.pt")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        save_checkpoint({"model": student_flow_state(model),
                         "config": {"model_conf": args.model_conf, "dmo": dataclasses.asdict(self.opts),
                                    "teacher": os.path.abspath(args.teacher)}}, out)
        logger.info("wrote the student: %s", out)
        return self.evaluate(args, model, valid_loader)

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        device = next(model.parameters()).device
        ds = valid_loader.dataset
        lf = self.loss_fn
        rows = {"student": [], "teacher": []}
        secs = {"student": 0.0, "teacher": 0.0}
        for i in range(min(args.eval_utts, len(ds))):
            batch = move_to_device(collate_text_token_mel([ds[i]]), device)
            for who in ("student", "teacher"):
                g = torch.Generator(device=device).manual_seed(i)
                t0 = time.perf_counter()
                if who == "student":
                    x, c = lf.sample(model.student, batch, g)
                else:
                    x, c = lf.sample(lf.teacher, batch, g, steps=args.eval_teacher_nfe, solver="euler",
                                     cfg_scale=self.opts.teacher_cfg)
                secs[who] += time.perf_counter() - t0
                rows[who].append(evaluate_mel(x, c, lf.teacher, batch, lf.recognizer, lf.speaker))
        metrics: dict = {"student_steps": self.opts.student_steps, "teacher_nfe": args.eval_teacher_nfe,
                         "teacher_cfg": self.opts.teacher_cfg, "eval_utts": len(rows["student"])}
        for who, stats in rows.items():
            for key in ("cer", "ctc", "sim", "mel_l1"):
                vals = [s[key] for s in stats if key in s]
                if vals:
                    metrics[f"{who}_{key}"] = round(float(np.mean(vals)), 4)
            metrics[f"{who}_seconds"] = round(secs[who], 3)
        metrics["speedup"] = round(secs["teacher"] / max(secs["student"], 1e-9), 2)
        metrics["train_seconds"] = round(time.time() - self._start, 1)
        return metrics
