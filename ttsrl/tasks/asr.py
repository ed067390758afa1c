"""CTC judge ASR training task: characters from log-mel, on ground-truth audio only (stage 9).

Usage::

    python -m ttsrl.bin.train_asr --config conf/asr/small.yaml \\
        --train_data_dir data/train --train_feats_dir dump/feats/train \\
        --valid_data_dir data/dev --valid_feats_dir dump/feats/dev --exp_dir exp/judge

The character list is built from the train text (normalized as the scorer normalizes) and
the global mel stats come from ``<train_feats_dir>/stats.npz`` or its JOB shards
(``split*/*/stats.npz``); both go into the model, so ``exp/judge/model.pt`` is all the
``ctc`` judge needs. Without a feats dir, log-mels are computed from the data dir's
``wav.scp`` in memory (small corpora, tests). ``max_tokens`` counts padded mel frames.
``metrics.json``: ``dev_cer`` (mean per-utterance CER, percent, Seed-TTS-Eval
normalization), ``dev_cer_corpus``, ``dev_wer``, ``train_seconds``, ``num_params``.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import time

import numpy as np
import torch

from ttsrl.data.datadir import read_kv
from ttsrl.data.dataset import FramesDataset, UttDataset, collate_pad
from ttsrl.feats.stats import FeatStats, merge_stats_files
from ttsrl.models.asr import CTCASR, CTCASRConfig, asr_conf_dict, greedy_ctc
from ttsrl.tasks.base import Task
from ttsrl.train.trainer import move_to_device
from ttsrl.utils.config import build_dataclass, load_yaml

logger = logging.getLogger(__name__)


def compute_mels(data_dir: str, mel_conf: dict) -> dict[str, np.ndarray]:
    """``{utt: (T, n_mels) log-mel}`` of every utterance of ``data_dir/wav.scp`` (in memory)."""
    from tqdm import tqdm

    from ttsrl.data.audio import load_audio
    from ttsrl.data.datadir import DataDir
    from ttsrl.feats.mel import MelConfig, MelExtractor

    mel = MelExtractor(build_dataclass(MelConfig, mel_conf, "mel"))
    d = DataDir.load(data_dir)
    out = {}
    for utt in tqdm(d.utts, desc=f"mel {data_dir}", unit="utt", dynamic_ncols=True):
        path, segment = d.audio_spec(utt)
        wav, _ = load_audio(path, sample_rate=mel.config.sample_rate, segment=segment)
        out[utt] = mel.compute(wav)
    return out


class ASRTask(Task):
    description = "Train the CTC judge ASR (characters from log-mel) on ground-truth audio."

    def __init__(self) -> None:
        self._start = 0.0  # when building the model started: train_seconds
        self._cache: dict = {}  # log-mels computed in memory, until the datasets hold them

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train_data_dir", required=True, help="data dir of the training set (text, wav.scp)")
        p.add_argument("--valid_data_dir", required=True, help="data dir of the validation set")
        p.add_argument("--train_feats_dir", default=None,
                       help="dumped log-mels (feats.scp, utt2num_frames, stats); default: computed from wav.scp")
        p.add_argument("--valid_feats_dir", default=None, help="dumped log-mels of the validation set")
        p.add_argument("--stats_files", nargs="+", default=None,
                       help="global stats (shards are merged); default: <train_feats_dir>/stats.npz or its split shards")

    def _feats(self, data_dir: str, feats_dir: str | None, mel_conf: dict):
        """(feats source for UttDataset, lengths file or None)."""
        if feats_dir:
            lens = os.path.join(feats_dir, "utt2num_frames")
            return os.path.join(feats_dir, "feats.scp"), lens if os.path.isfile(lens) else None
        key = (os.path.abspath(data_dir), repr(sorted(mel_conf.items())))
        if key not in self._cache:
            self._cache[key] = compute_mels(data_dir, mel_conf)
        return self._cache[key], None

    def _stats(self, args, mel_conf: dict) -> FeatStats:
        files = args.stats_files
        if not files and args.train_feats_dir:
            one = os.path.join(args.train_feats_dir, "stats.npz")
            files = [one] if os.path.isfile(one) else sorted(glob.glob(os.path.join(args.train_feats_dir, "split*", "*", "stats.npz")))
        if files:
            return merge_stats_files(files)
        feats, _ = self._feats(args.train_data_dir, args.train_feats_dir, mel_conf)
        if not isinstance(feats, dict):
            raise FileNotFoundError(f"{args.train_feats_dir}: no stats.npz (nor split*/*/stats.npz); give --stats_files")
        acc = FeatStats()
        for m in feats.values():
            acc.update(m)
        return acc

    def build_model(self, args: argparse.Namespace) -> CTCASR:
        from ttsrl.text.tokenizer import build_token_list

        self._start = time.time()
        conf = dict(args.model_conf)
        if not conf.get("token_list"):
            conf["token_list"] = build_token_list("char", read_kv(os.path.join(args.train_data_dir, "text")).values())
        mel_file = os.path.join(args.train_feats_dir or "", "mel_conf.yaml")
        if args.train_feats_dir and os.path.isfile(mel_file):
            dumped = load_yaml(mel_file)
            given = conf.get("mel") or {}
            if any(dumped.get(k) != v for k, v in given.items()):
                raise ValueError(f"model_conf.mel {given} contradicts the features' {mel_file}")
            conf["mel"] = dumped
        cfg = build_dataclass(CTCASRConfig, conf, "model_conf")
        args.model_conf = asr_conf_dict(cfg)  # the complete config (with the character list) goes into model.pt
        model = CTCASR(cfg)
        model.set_stats(_mvn(self._stats(args, args.model_conf["mel"])))
        logger.info("CTC ASR: %d characters, %.2fM parameters", cfg.vocab_size, model.num_params() / 1e6)
        return model

    def _dataset(self, args, data_dir: str, feats_dir: str | None) -> FramesDataset:
        from ttsrl.text.tokenizer import CharTokenizer, encode_texts

        tok = CharTokenizer(args.model_conf["token_list"])
        ids, unknown = encode_texts(tok, read_kv(os.path.join(data_dir, "text")))
        for utt, symbols in list(unknown.items())[:10]:
            logger.warning("%s: %s: %s not in the character list (mapped to <unk>)", data_dir, utt, " ".join(symbols))
        feats, lens_file = self._feats(data_dir, feats_dir, args.model_conf["mel"])
        ds = UttDataset({"feats": feats, "text": ids})
        return FramesDataset(ds, ds.lengths("feats", lens_file))

    def build_datasets(self, args):
        train = self._dataset(args, args.train_data_dir, args.train_feats_dir)
        valid = self._dataset(args, args.valid_data_dir, args.valid_feats_dir)
        self._cache.clear()  # the datasets hold the in-memory features now
        return train, valid, collate_pad

    def compute_loss(self, model, batch):
        out = model(batch["feats"], batch["feats_lens"], batch["text"], batch["text_lens"])
        n_chars = batch["text_lens"].sum()
        stats = {"loss": out.loss.detach(), "weight": n_chars}
        if not model.training:  # corpus CER over token ids (spaces included): drives best.pt
            from ttsrl.score.wer import token_errors

            errors = 0
            for ref, n, hyp in zip(batch["text"].tolist(), batch["text_lens"].tolist(),
                                   greedy_ctc(out.log_probs, out.lens), strict=True):
                errors += token_errors([str(t) for t in ref[: int(n)]], [str(t) for t in hyp]).errors
            stats["cer"] = 100.0 * errors / max(int(n_chars), 1)
        return out.loss, stats

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        from ttsrl.score.wer import error_rates

        texts = read_kv(os.path.join(args.valid_data_dir, "text"))
        device = next(model.parameters()).device
        refs, hyps = [], []
        for batch in valid_loader:
            utts = batch["utts"]
            batch = move_to_device(batch, device)
            hyps += model.decode(batch["feats"], batch["feats_lens"])
            refs += [texts[u] for u in utts]
        r = error_rates(refs, hyps)
        return {"dev_cer": round(r["cer"], 3), "dev_cer_corpus": round(r["cer_corpus"], 3),
                "dev_wer": round(r["wer"], 3), "dev_utts": len(refs), "num_params": model.num_params(),
                "train_seconds": round(time.time() - self._start, 1)}


def _mvn(acc: FeatStats):
    from ttsrl.feats.stats import GlobalMVN

    return GlobalMVN(mean=acc.mean, std=acc.std)
