"""Speech tokenizer training task: FSQ tokens + CTC text head + mel head on dumped log-mels.

Reads the log-mels of ``ttsrl.bin.compute_feats`` (``<feats_dir>/feats.scp``,
``utt2num_frames``, ``mel_conf.yaml``), the transcripts of the data directories and the
global stats (one ``stats.npz`` or the shards of a JOB split, merged here). Writes a
self-contained tokenizer directory::

    <exp_dir>/model.pt  config.yaml  tokens.txt  stats.npz  metrics.json  train.log  tensorboard/  checkpoints/

(``bpe.model`` too for BPE units). ``metrics.json`` holds the dev-set numbers of the best
model: ``ctc_cer_<valid set>`` (percent, greedy CTC transcription of the quantized tokens
against the normalized text), ``codebook_perplexity`` (exp of the entropy of code usage) and
``codebook_usage`` (share of the codes used). ``--max_frames`` / ``--valid_max_frames`` bound
the padded mel frames of a training / validation batch.

Usage::

    python -m ttsrl.bin.train_tokenizer --config conf/tokenizer/small.yaml \\
        --train_data_dir data/train --train_feats_dir dump/feats/train \\
        --valid_data_dir data/dev --valid_feats_dir dump/feats/dev \\
        --stats_files dump/feats/train/split4/*/stats.npz --exp_dir exp/tokenizer --ngpu 0
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import time

import numpy as np
import torch

from ttsrl.data.datadir import read_kv
from ttsrl.data.dataset import FramesDataset, UttDataset, collate_pad
from ttsrl.feats.stats import merge_stats_files
from ttsrl.models.speech_tokenizer import (
    SPEECH_TOKENIZERS,
    SpeechTokenizer,
    compute_loss,
    evaluate_tokens,
    model_conf_dict,
)
from ttsrl.tasks.base import Task
from ttsrl.text.tokenizer import build_token_list, build_tokenizer, encode_texts, train_bpe, write_token_list
from ttsrl.train import distributed as du
from ttsrl.train.trainer import move_to_device
from ttsrl.utils.config import load_yaml, str2bool

logger = logging.getLogger(__name__)


def check_ctc_lengths(name: str, ds: FramesDataset, config) -> None:
    """Warn about utterances whose CTC target cannot fit their frames (their CTC loss is zeroed)."""
    ctc_frames = ds.lengths.copy()
    for _ in range(int(np.log2(config.subsample))):
        ctc_frames = (ctc_frames - 1) // 2 + 1
    ctc_frames *= max(config.ctc_upsample, 1)
    bad = 0
    for i, utt in enumerate(ds.utts):
        y = np.asarray(ds.fields["text"][utt])
        need = len(y) + int((y[1:] == y[:-1]).sum())  # a blank between repeated labels
        bad += need > ctc_frames[i]
    if bad:
        logger.warning("%s: %d of %d utterances have more CTC labels than frames", name, bad, len(ds))


class TokenizerTask(Task):
    description = __doc__

    def __init__(self) -> None:
        self.tokenizer = None  # the CTC units' text tokenizer (tokens.txt, bpe.model of the exp dir)
        self._start = 0.0  # when training started: train_seconds

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("data")
        g.add_argument("--train_data_dir", required=True, help="data dir whose text gives the CTC targets")
        g.add_argument("--train_feats_dir", required=True,
                       help="dumped features: feats.scp, utt2num_frames, mel_conf.yaml")
        g.add_argument("--valid_data_dir", required=True)
        g.add_argument("--valid_feats_dir", required=True)
        g.add_argument("--stats_files", nargs="+", default=None,
                       help="global stats of the train feats (several: shards, merged); "
                            "default <train_feats_dir>/stats.npz")
        g.add_argument("--token_type", default="char", choices=["char", "phn", "bpe"], help="CTC target units")
        g.add_argument("--token_list", default=None, help="CTC token list (default: built from the train text)")
        g.add_argument("--bpemodel", default=None, help="bpe: an existing sentencepiece model (default: trained here)")
        g.add_argument("--bpe_vocab_size", type=int, default=300, help="bpe: vocabulary of the model trained here")
        g = p.add_argument_group("model")
        g.add_argument("--model", default="fsq_ctc", help="registered speech tokenizer")
        g.add_argument("--write_metrics", type=str2bool, default=True, help="evaluate the best model on the valid set")
        p.set_defaults(ngpu=0)  # 1: a GPU (more: launch with torchrun)

    def add_batch_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--max_frames", type=int, default=20000, help="padded mel frames per training batch")
        p.add_argument("--valid_max_frames", type=int, default=40000, help="padded mel frames per validation batch")

    def batch_limits(self, args: argparse.Namespace) -> tuple[int, int]:
        return args.max_frames, args.valid_max_frames

    def _write_units(self, args: argparse.Namespace) -> None:
        """CTC units (token list, BPE model) and the global stats into the tokenizer dir (rank 0)."""
        os.makedirs(args.exp_dir, exist_ok=True)
        bpemodel = os.path.join(args.exp_dir, "bpe.model") if args.token_type == "bpe" else None
        stats = merge_stats_files(args.stats_files or [os.path.join(args.train_feats_dir, "stats.npz")])
        if du.is_main():
            texts = read_kv(os.path.join(args.train_data_dir, "text")).values()
            if bpemodel and args.bpemodel:
                src = args.bpemodel if args.bpemodel.endswith(".model") else args.bpemodel + ".model"
                shutil.copyfile(src, bpemodel)
            elif bpemodel and not os.path.isfile(bpemodel):  # (a resumed run keeps its units)
                train_bpe(texts, bpemodel, args.bpe_vocab_size)
            tokens = args.token_list or build_token_list(args.token_type, texts, bpemodel=bpemodel)
            write_token_list(os.path.join(args.exp_dir, "tokens.txt"),
                             build_tokenizer(args.token_type, tokens, bpemodel).tokens)
            stats.save(os.path.join(args.exp_dir, "stats.npz"))
        du.barrier()
        args.token_list = os.path.join(args.exp_dir, "tokens.txt")  # what the resolved config names
        self.tokenizer = build_tokenizer(args.token_type, args.token_list, bpemodel)

    def build_model(self, args: argparse.Namespace) -> SpeechTokenizer:
        self._write_units(args)
        model_conf = dict(args.model_conf)
        model_conf["vocab_size"] = self.tokenizer.vocab_size
        model_conf["mel"] = mel_config(args, model_conf)
        model = SPEECH_TOKENIZERS.build(args.model, model_conf)
        model.set_stats(os.path.join(args.exp_dir, "stats.npz"))
        args.model_conf = model_conf_dict(model.config)
        logger.info("%s: %.2fM parameters, codebook %d, %.1f tokens/s, CTC vocabulary %d",
                    args.model, model.num_params() / 1e6, model.codebook_size, model.config.token_rate,
                    self.tokenizer.vocab_size)
        return model

    def build_datasets(self, args):
        """Train and valid datasets of ``{feats, text}`` (CTC unit ids) bucketed by their frames."""
        out = []
        for data_dir, feats_dir in ((args.train_data_dir, args.train_feats_dir),
                                    (args.valid_data_dir, args.valid_feats_dir)):
            ids, unknown = encode_texts(self.tokenizer, read_kv(os.path.join(data_dir, "text")))
            for utt, symbols in list(unknown.items())[:20]:
                logger.warning("%s: %s: %s not in the token list (mapped to <unk>)", data_dir, utt, " ".join(symbols))
            ds = UttDataset({"feats": os.path.join(feats_dir, "feats.scp"), "text": ids})
            out.append(FramesDataset(ds, ds.lengths("feats", os.path.join(feats_dir, "utt2num_frames"))))
        return out[0], out[1], collate_pad

    def setup(self, args, model, train, valid, device) -> None:
        check_ctc_lengths(args.train_data_dir, train, model.config)
        self._start = time.time()

    def compute_loss(self, model, batch):
        return compute_loss(model, batch, decode=self.tokenizer.decode)  # validation CER on characters

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        if not args.write_metrics:
            return {}
        device = next(model.parameters()).device
        valid_name = os.path.basename(os.path.normpath(args.valid_data_dir))

        def batches():
            for batch in valid_loader:
                batch = move_to_device(batch, device)
                toks, lens = model.encode(batch["feats"], batch["feats_lens"])
                refs = [t[:n] for t, n in zip(batch["text"].tolist(), batch["text_lens"].tolist(), strict=True)]
                yield toks, lens, refs

        ev = evaluate_tokens(model, batches(), decode=self.tokenizer.decode)
        return {
            f"ctc_cer_{valid_name}": round(ev["ctc_cer"], 3),
            "codebook_perplexity": round(ev["codebook_perplexity"], 2),
            "codebook_usage": round(ev["codebook_usage"], 4),
            "codebook_size": model.codebook_size,
            "token_rate": model.config.token_rate,
            "metrics_set": valid_name,
            "num_params": model.num_params(),
            "train_seconds": round(time.time() - self._start, 1),
        }

    def final_metrics(self, args, trainer, valid_loader) -> dict:
        metrics = super().final_metrics(args, trainer, valid_loader)
        if metrics:
            metrics["train_steps"] = trainer.step
        return metrics


def mel_config(args: argparse.Namespace, model_conf: dict) -> dict:
    """The mel config of the dumped features (which the model must compute in encode_wav too)."""
    confs = []
    for d in (args.train_feats_dir, args.valid_feats_dir):
        path = os.path.join(d, "mel_conf.yaml")
        if os.path.isfile(path):
            confs.append((path, load_yaml(path)))
    if len(confs) == 2 and confs[0][1] != confs[1][1]:
        raise ValueError(f"{confs[0][0]} and {confs[1][0]} differ: train and valid features must match")
    if not confs:
        return model_conf.get("mel", {})
    given = model_conf.get("mel")
    if given and any(confs[0][1].get(k) != v for k, v in given.items()):
        raise ValueError(f"model_conf.mel {given} contradicts the features' {confs[0][0]}")
    return confs[0][1]
