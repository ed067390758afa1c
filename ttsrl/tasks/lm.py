"""Codec LM training task: next-speech-token prediction over stage 3's token dirs.

The LM reads the token dirs' ``text`` (its text units: char, phn or bpe, see
``ttsrl.data.token_dataset``) and remembers them: the training dir's ``tokens.txt``,
``token_type`` and ``bpe.model`` are copied into ``--exp_dir`` (with ``--token_list`` as
``tokens.txt`` when the training dir has none), so that synthesis encodes its texts with
them (``ttsrl.text.tokenizer.load_text_tokenizer``), and ``text_token_type`` is in the
resolved config.

Usage::

    python -m ttsrl.bin.train_lm --config conf/lm/small.yaml --train_dir dump/tokens/train \\
        --valid_dir dump/tokens/dev --speech_vocab_size 1000 --exp_dir exp/base/lm
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os

import torch

from ttsrl.data.datadir import read_kv
from ttsrl.data.token_dataset import PromptedTokenDataset, TokenDataset, collate_tokens, has_prompts
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.tasks.base import Task
from ttsrl.text.tokenizer import (
    TOKEN_TYPES,
    copy_text_units,
    read_token_list,
    read_token_type,
    write_token_list,
)
from ttsrl.train import distributed as du
from ttsrl.train.trainer import move_to_device, unwrap_model
from ttsrl.utils.config import build_dataclass, str2bool
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


class LMTask(Task):
    description = "Train the codec language model on text and speech tokens."

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train_dir", required=True, help="token dir of the training set (dump/tokens/<set>)")
        p.add_argument("--valid_dir", required=True, help="token dir of the validation set")
        p.add_argument("--token_list", default=None,
                       help="the text token list (its size is the text vocabulary; default: <train_dir>/tokens.txt, "
                            "which it must equal when the training dir has one)")
        p.add_argument("--text_token_type", default=None, choices=TOKEN_TYPES,
                       help="the text units of the token dirs (default: <train_dir>/token_type, char without it); "
                            "checked against the training dir and recorded with the model")
        p.add_argument("--speech_vocab_size", type=int, required=True, help="the speech tokenizer's codebook size")
        p.add_argument("--utt2spk", default=None,
                       help="utt2spk of the training set: prompts training items with another utterance of their "
                            "speaker, laid out as zero-shot synthesis reads them (see --prompt_prob)")
        p.add_argument("--prompt_prob", type=float, default=0.5,
                       help="share of training items prompted (with --utt2spk and --lm_prompt true); a valid set "
                            "with prompts (stage 3's prompt_speech.scp) is read with its prompts")
        p.add_argument("--lm_prompt", type=str2bool, default=True,
                       help="the LM will read zero-shot prompts, as in sample_lm and synthesize (false: it learns "
                            "the text alone: no prompted training items, whatever --utt2spk and --prompt_prob say, "
                            "and the valid set is read without its prompts)")

    @staticmethod
    def resolve_text_units(args: argparse.Namespace) -> None:
        """Fill in ``--token_list`` and ``--text_token_type`` from the training dir, checking that they agree."""
        own = os.path.join(args.train_dir, "tokens.txt")
        if args.token_list is None:
            if not os.path.isfile(own):
                raise ValueError(f"{args.train_dir} has no tokens.txt: give --token_list")
            args.token_list = own
        elif os.path.isfile(own) and read_token_list(own) != read_token_list(args.token_list):
            raise ValueError(f"--token_list {args.token_list} differs from {own}, which the ids of "
                             f"{args.train_dir}/text index")
        if args.text_token_type is None or os.path.isfile(os.path.join(args.train_dir, "token_type")):
            kind = read_token_type(args.train_dir)  # a training dir without token_type: as said, or char
            if args.text_token_type not in (None, kind):
                raise ValueError(f"--text_token_type {args.text_token_type}, but the text of {args.train_dir} is "
                                 f"in {kind} units ({args.train_dir}/token_type)")
            args.text_token_type = kind

    @staticmethod
    def save_text_units(args: argparse.Namespace) -> None:
        """The LM's text units into its exp dir: ``tokens.txt`` (the ``--token_list``), ``token_type``, ``bpe.model``."""
        if not du.is_main():
            return
        copy_text_units(args.train_dir, args.exp_dir)
        if not os.path.isfile(os.path.join(args.train_dir, "tokens.txt")):  # a token dir without its list
            write_token_list(os.path.join(args.exp_dir, "tokens.txt"), read_token_list(args.token_list))
        atomic_write_text(os.path.join(args.exp_dir, "token_type"), args.text_token_type + "\n")

    def build_model(self, args: argparse.Namespace) -> CodecLM:
        self.resolve_text_units(args)
        self.save_text_units(args)
        conf = {**args.model_conf, "text_vocab_size": len(read_token_list(args.token_list)),
                "speech_vocab_size": args.speech_vocab_size}
        if conf.get("position") == "rope" and not conf.get("speech_pos_rate"):
            conf["speech_pos_rate"] = round(measure_pos_rate(args.train_dir), 4)
            logger.info("speech_pos_rate %.4f text tokens per speech token (measured on %s)",
                        conf["speech_pos_rate"], args.train_dir)
        cfg = build_dataclass(CodecLMConfig, conf, "model_conf")
        args.model_conf = dataclasses.asdict(cfg)  # complete: model.pt rebuilds the model
        return CodecLM(cfg)

    def build_datasets(self, args):
        utt2spk = read_kv(args.utt2spk) if args.utt2spk and args.lm_prompt else None
        max_len = args.model_conf.get("max_len")
        train = PromptedTokenDataset(TokenDataset(args.train_dir), utt2spk, args.prompt_prob, args.seed, max_len)
        valid_prompted = args.lm_prompt and has_prompts(args.valid_dir)
        valid = PromptedTokenDataset(TokenDataset(args.valid_dir, with_prompt=valid_prompted))
        if utt2spk:
            logger.info("prompted training: %d of %d items carry a prompt", len(train.partner), len(train))
        return train, valid, collate_tokens

    @staticmethod
    def _forward(model, batch, drop_text=None):
        return model(batch["text"], batch["text_lens"], batch["speech"], batch["speech_lens"],
                     batch.get("prompt_lens"), drop_text=drop_text)

    def compute_loss(self, model, batch):
        p = unwrap_model(model).config.text_dropout  # CFG: that share of items is read without its text
        drop = torch.rand(batch["text_lens"].shape, device=batch["text_lens"].device) < p if p > 0 else None
        out = self._forward(model, batch, drop)
        n = out.mask.sum()
        stats = {"ce": out.loss.detach(), "acc": out.acc.detach(), "weight": n}
        loss = out.loss
        if out.ctc_loss is not None:  # the text-position head
            loss = loss + unwrap_model(model).config.ctc_weight * out.ctc_loss
            stats["ctc"] = out.ctc_loss.detach()
        stats["loss"] = loss.detach()
        return loss, stats

    @torch.no_grad()
    def evaluate(self, args, model, valid_loader) -> dict:
        correct = total = 0
        nll = 0.0
        device = next(model.parameters()).device
        for batch in valid_loader:
            batch = move_to_device(batch, device)
            out = self._forward(model, batch)
            n = int(out.mask.sum())
            correct += float(out.acc) * n
            nll += float(out.loss) * n
            total += n
        return {"dev_token_acc": correct / max(total, 1), "dev_nll": nll / max(total, 1), "dev_tokens": total}


def measure_pos_rate(token_dir: str) -> float:
    """Text tokens per speech token over a token dir (the ``speech_pos_rate`` of position 'rope')."""
    data = TokenDataset(token_dir)
    n_text = sum(len(data.text[u]) for u in data.utts)
    n_speech = sum(data.speech_lens[u] for u in data.utts)
    if n_text == 0 or n_speech == 0:
        raise ValueError(f"{token_dir}: no text or speech tokens to measure speech_pos_rate on")
    return n_text / n_speech
