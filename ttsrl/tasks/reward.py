"""Multi-task reward model training: golden speech tokens of a token dir, labels of its data dir.

Usage::

    python -m ttsrl.bin.train_reward --config conf/reward/small.yaml \\
        --train_dir dump/tokens/train --train_data_dir data/train \\
        --valid_dir dump/tokens/dev --valid_data_dir data/dev \\
        --tokenizer_dir exp/tokenizer --speech_vocab_size 1000 --exp_dir exp/reward

Targets per utterance: the text ids of ``<token_dir>/ctc_text`` (CTC; the transcript in the
speech tokenizer's CTC units whatever the LM's text units are, ``text`` for a token dir
without ``ctc_text``) and, from the data dir,
``utt2emo``, ``utt2gender``, ``utt2age`` (class names) and ``utt2quality`` (a number; the
MOS words bad/poor/fair/good/excellent count 1-5). A missing label file disables its head;
an utterance without a label is left out of that head's loss. The class names come from
the training data dir (sorted), unless ``model_conf.label_names`` fixes them, and are
saved in the model config with the training set's quality mean and standard deviation.
The text vocabulary is ``--token_list``, by default the tokenizer's CTC list
(``<tokenizer_dir>/tokens.txt``; the token dir's ``tokens.txt`` when its ``text`` is in those
units and no tokenizer dir is given); it is copied into ``--exp_dir`` as ``tokens.txt`` (with
``bpe.model`` for BPE units), where ``ttsrl.bin.eval_reward`` finds it.

Loss (weights and augmentation in ``model_conf``, see :class:`MultiTaskRewardConfig`)::

    ctc_weight * CTC / text tokens + emotion_weight * CE + gender_weight * CE + age_weight * CE
        + quality_weight * MSE(standardized quality)

In training, golden tokens are corrupted (:func:`ttsrl.models.reward.corrupt_tokens`:
random substitutions and deletions) so that the model meets token sequences as imperfect
as the LM's samples; labels stay those of the golden utterance. ``max_tokens`` counts
padded speech tokens.

``metrics.json`` (dev set, best model): ``ctc_cer`` (percent, greedy CTC, characters of the
texts decoded with the text tokenizer), ``emo_acc``, ``gender_acc``, ``age_acc``,
``quality_corr`` (Pearson; null when a head or its labels are absent), ``text_logprob``
(mean log p_CTC(text | golden tokens) per text token), ``text_rank_acc`` (share of
utterances whose golden tokens score above a corrupted copy, 20% substitutions),
``dev_utts``, ``num_params``, ``train_seconds``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ttsrl.data.datadir import DataDirError, read_kv
from ttsrl.data.token_dataset import CTC_TEXT, TokenDataset, ctc_token_list, pad_1d
from ttsrl.models.ctc import greedy_ctc
from ttsrl.models.reward import CLASS_HEADS, MultiTaskReward, MultiTaskRewardConfig, corrupt_tokens
from ttsrl.tasks.base import Task
from ttsrl.train.trainer import move_to_device, unwrap_model
from ttsrl.utils.config import build_dataclass, str2bool

logger = logging.getLogger(__name__)

#: The data dir's label file of each classification head.
LABEL_FILES = {"emotion": "utt2emo", "gender": "utt2gender", "age": "utt2age"}
_MOS_WORDS = {"bad": 1.0, "poor": 2.0, "fair": 3.0, "good": 4.0, "excellent": 5.0}


# --------------------------------------------------------------------------- labels
def read_class_labels(data_dir: str) -> dict[str, dict[str, str]]:
    """``{head: {utt: name}}`` for every label file of :data:`LABEL_FILES` the data dir has."""
    out = {}
    for head, name in LABEL_FILES.items():
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            out[head] = read_kv(path)
    return out


def read_quality(data_dir: str) -> dict[str, float]:
    """``{utt: quality}`` of ``utt2quality`` (empty without it); errors name the file and utterance."""
    path = os.path.join(data_dir, "utt2quality")
    if not os.path.isfile(path):
        return {}
    out = {}
    for utt, v in read_kv(path).items():
        if v in _MOS_WORDS:
            out[utt] = _MOS_WORDS[v]
            continue
        try:
            x = float(v)
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            raise DataDirError(f"{path}: utterance {utt}: quality {v!r} is not a number "
                               f"(nor one of {', '.join(_MOS_WORDS)})")
        out[utt] = x
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None for fewer than 2 points or a constant series."""
    if len(x) < 2:
        return None
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else None


def build_text_decoder(token_list: str, bpemodel: str | None = None) -> Callable[[Sequence[int]], str]:
    """Text ids -> text: a BPE tokenizer when ``bpemodel`` (or ``bpe.model`` beside the token list) exists,
    else the token list joined (char and phone units; ``<space>`` is a space)."""
    from ttsrl.text.tokenizer import BPETokenizer, CharTokenizer

    if bpemodel is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(token_list)), "bpe.model")
        bpemodel = beside if os.path.isfile(beside) else None
    tok = BPETokenizer(bpemodel, token_list) if bpemodel else CharTokenizer(token_list)
    return tok.decode


# --------------------------------------------------------------------------- data
class RewardDataset(Dataset):
    """Golden speech tokens and CTC-unit text ids (``ctc_text``) of a token dir with the class ids and
    quality of its data dir."""

    def __init__(self, token_dir: str, data_dir: str, label_names: dict[str, list[str]]):
        self.tokens = TokenDataset(token_dir, text_file=CTC_TEXT)
        self.utts = self.tokens.utts
        self.targets: dict[str, torch.Tensor] = {}
        labels = read_class_labels(data_dir)
        for head in CLASS_HEADS:
            names = label_names.get(head, [])
            index = {n: i for i, n in enumerate(names)}
            got = labels.get(head, {})
            ids = [index.get(got.get(u, ""), -1) for u in self.utts]
            unknown = sorted({got[u] for u in self.utts if u in got and got[u] not in index})
            if names and unknown:
                logger.warning("%s/%s: labels %s are not among the model's %s classes %s: ignored",
                               data_dir, LABEL_FILES[head], unknown, head, names)
            self.targets[head] = torch.tensor(ids, dtype=torch.long)
            if names:
                logger.info("%s: %d of %d utterances have a %s label", data_dir,
                            int((self.targets[head] >= 0).sum()), len(self.utts), head)
        quality = read_quality(data_dir)
        self.targets["quality"] = torch.tensor([quality.get(u, math.nan) for u in self.utts], dtype=torch.float32)
        # bucketing by speech tokens: TokenDataset's lengths count text + speech + 2 specials
        self.lengths = self.tokens.lengths - np.array([len(self.tokens.text[u]) + 2 for u in self.utts])

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict:
        item = self.tokens[i]
        for k, v in self.targets.items():
            item[k] = v[i]
        return item


def collate_reward(items: list[dict]) -> dict:
    """``{utts, speech, speech_lens, text, text_lens, emotion, gender, age, quality}``."""
    batch = {"utts": [it["utt"] for it in items]}
    batch["speech"], batch["speech_lens"] = pad_1d([it["speech"] for it in items])
    batch["text"], batch["text_lens"] = pad_1d([it["text"] for it in items])
    for k in (*CLASS_HEADS, "quality"):
        batch[k] = torch.stack([it[k] for it in items])
    return batch


# --------------------------------------------------------------------------- loss
def multitask_loss(model: MultiTaskReward, out, batch: dict) -> tuple[torch.Tensor, dict]:
    """Weighted CTC + CE (per head, labelled utterances) + MSE (standardized quality); stats per term."""
    c = model.config
    nll = model.ctc_nll(out, batch["text"], batch["text_lens"])  # (B,)
    ctc = nll.sum() / batch["text_lens"].sum().clamp(min=1)
    loss = c.ctc_weight * ctc
    stats = {"ctc": ctc.detach()}
    for head in CLASS_HEADS:
        logits, target = out.logits(head), batch[head]
        if logits is None:
            continue
        if not bool((target >= 0).any()):  # no labelled utterance: cross_entropy would be NaN
            loss = loss + 0.0 * logits.sum()  # the head still takes part in the graph (DDP)
            continue
        ce = F.cross_entropy(logits.float(), target, ignore_index=-1)
        loss = loss + getattr(c, f"{head}_weight") * ce
        mask = target >= 0
        stats[f"{head}_ce"] = ce.detach()
        stats[f"{head}_acc"] = ((logits.argmax(-1) == target) & mask).sum() / mask.sum()
    q = batch["quality"]
    if out.quality_norm is not None and not bool(torch.isfinite(q).any()):
        loss = loss + 0.0 * out.quality_norm.sum()
    elif out.quality_norm is not None:
        mask = torch.isfinite(q)
        target = (q[mask] - c.quality_mean) / c.quality_std
        mse = F.mse_loss(out.quality_norm[mask].float(), target)
        loss = loss + c.quality_weight * mse
        stats["quality_mse"] = mse.detach()
    stats["loss"] = loss.detach()
    stats["weight"] = len(batch["utts"])
    return loss, stats


@torch.no_grad()
def evaluate_reward(model: MultiTaskReward, loader, decode: Callable[[Sequence[int]], str]) -> dict:
    """Per-head metrics of the reward model on golden tokens of ``loader``'s batches (:func:`collate_reward`).

    ``ctc_cer`` (percent, greedy CTC), ``emo_acc``, ``gender_acc``, ``age_acc`` (labelled
    utterances), ``quality_corr`` (Pearson), ``text_logprob`` (per text token) and
    ``text_rank_acc`` (golden tokens beat a copy with 20 % substitutions), ``utts``.
    """
    from ttsrl.models.speech_tokenizer import char_errors

    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(0)
    errors = chars = 0
    correct = dict.fromkeys(CLASS_HEADS, 0)
    total = dict.fromkeys(CLASS_HEADS, 0)
    q_pred: list[float] = []
    q_true: list[float] = []
    lp_sum = 0.0
    n_text = ranked = utts = 0
    for batch in loader:
        batch = move_to_device(batch, device)
        speech, lens, text, text_lens = batch["speech"], batch["speech_lens"], batch["text"], batch["text_lens"]
        out = model(speech, lens)
        refs = [r[: int(n)] for r, n in zip(text.tolist(), text_lens.tolist(), strict=True)]
        e, n = char_errors(refs, greedy_ctc(out.ctc_log_probs, out.ctc_lens), decode)
        errors, chars = errors + e, chars + n
        for head in CLASS_HEADS:
            logits, target = out.logits(head), batch[head]
            if logits is not None:
                mask = target >= 0
                correct[head] += int(((logits.argmax(-1) == target) & mask).sum())
                total[head] += int(mask.sum())
        if out.quality is not None:
            mask = torch.isfinite(batch["quality"])
            q_pred += out.quality[mask].tolist()
            q_true += batch["quality"][mask].tolist()
        golden = model.text_logprob(speech, lens, text, text_lens)
        bad, bad_lens = corrupt_tokens(speech, lens, model.config.speech_vocab_size, 0.2, 0.0, generator=gen)
        corrupted = model.text_logprob(bad, bad_lens, text, text_lens)
        lp_sum += float(golden.sum())
        n_text += int(text_lens.sum())
        ranked += int((golden > corrupted).sum())
        utts += len(batch["utts"])

    def acc(head):
        return round(correct[head] / total[head], 4) if total[head] else None

    corr = pearson(q_pred, q_true)
    return {"ctc_cer": round(100.0 * errors / max(chars, 1), 3), "emo_acc": acc("emotion"),
            "gender_acc": acc("gender"), "age_acc": acc("age"),
            "quality_corr": None if corr is None else round(corr, 4),
            "text_logprob": round(lp_sum / max(n_text, 1), 4), "text_rank_acc": round(ranked / max(utts, 1), 4),
            "utts": utts}


class RewardTask(Task):
    description = "Train the multi-task reward model (text CTC, emotion, gender, age, quality) on speech tokens."

    def __init__(self) -> None:
        self._start = 0.0  # when building the model started: train_seconds

    def add_task_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--train_dir", required=True, help="token dir of the training set (dump/tokens/<set>)")
        p.add_argument("--train_data_dir", required=True, help="data dir of the training set (utt2emo, utt2quality ...)")
        p.add_argument("--valid_dir", required=True, help="token dir of the validation set")
        p.add_argument("--valid_data_dir", required=True, help="data dir of the validation set")
        p.add_argument("--token_list", default=None,
                       help="the text token list of the 'ctc_text' ids (default: <tokenizer_dir>/tokens.txt, the "
                            "tokenizer's CTC units; without --tokenizer_dir <train_dir>/tokens.txt when its text "
                            "is in those units)")
        p.add_argument("--bpemodel", default=None,
                       help="sentencepiece model of BPE text units, for the CER (default: bpe.model beside the token list)")
        p.add_argument("--speech_vocab_size", type=int, required=True, help="the speech tokenizer's codebook size")
        p.add_argument("--tokenizer_dir", default=None,
                       help="speech tokenizer dir: its code vectors embed the tokens when model_conf.code_dim is "
                            "'auto' or > 0")
        p.add_argument("--init_ctc_from_tokenizer", type=str2bool, default=False,
                       help="start the text path from the tokenizer's CTC head (needs code_dim and its architecture)")

    @staticmethod
    def _token_list(args) -> str:
        return args.token_list or ctc_token_list(args.train_dir, args.tokenizer_dir)

    def save_text_units(self, args) -> None:
        """The text vocabulary (and its bpe.model) into the exp dir: eval_reward decodes with it."""
        from ttsrl.text.tokenizer import read_token_list, write_token_list
        from ttsrl.train import distributed as du
        from ttsrl.utils.fileio import atomic_copy

        if not du.is_main():
            return
        token_list = self._token_list(args)
        write_token_list(os.path.join(args.exp_dir, "tokens.txt"), read_token_list(token_list))
        bpemodel = args.bpemodel or os.path.join(os.path.dirname(os.path.abspath(token_list)), "bpe.model")
        if os.path.isfile(bpemodel):
            atomic_copy(bpemodel, os.path.join(args.exp_dir, "bpe.model"))

    def build_model(self, args: argparse.Namespace) -> MultiTaskReward:
        from ttsrl.text.tokenizer import read_token_list

        self._start = time.time()
        conf = dict(args.model_conf)
        conf["text_vocab_size"] = len(read_token_list(self._token_list(args)))
        self.save_text_units(args)
        conf["speech_vocab_size"] = args.speech_vocab_size
        if not conf.get("label_names"):
            labels = read_class_labels(args.train_data_dir)
            conf["label_names"] = {h: sorted(set(v.values())) for h, v in labels.items()}
            for h, names in conf["label_names"].items():
                if len(names) > 50:
                    logger.warning("%s has %d distinct %s labels: numbers rather than classes?",
                                   args.train_data_dir, len(names), h)
        quality = list(read_quality(args.train_data_dir).values())
        if quality and "quality_mean" not in args.model_conf:
            conf["quality_mean"] = float(np.mean(quality))
            conf["quality_std"] = float(np.std(quality)) or 1.0
        elif not quality:
            conf.setdefault("quality", False)
            if conf["quality"]:
                raise ValueError(f"{args.train_data_dir}: no utt2quality; set model_conf.quality false")
        table = tok = None
        use_codes = conf.get("code_dim") == "auto" or int(conf.get("code_dim") or 0) > 0
        if args.init_ctc_from_tokenizer and not use_codes:
            raise ValueError("--init_ctc_from_tokenizer needs model_conf.code_dim (auto or the tokenizer's code size)")
        if use_codes:
            if not args.tokenizer_dir:
                raise ValueError("model_conf.code_dim embeds tokens by the tokenizer's code vectors: give --tokenizer_dir")
            from ttsrl.models.speech_tokenizer import SpeechTokenizer

            tok = SpeechTokenizer.from_pretrained(args.tokenizer_dir)
            if tok.codebook_size != args.speech_vocab_size:
                raise ValueError(f"--speech_vocab_size {args.speech_vocab_size} but the tokenizer in "
                                 f"{args.tokenizer_dir} has {tok.codebook_size} codes")
            with torch.no_grad():
                table = tok.embed_tokens(torch.arange(tok.codebook_size)).float().cpu()
            conf["code_dim"] = table.shape[1]
        cfg = build_dataclass(MultiTaskRewardConfig, conf, "model_conf")
        args.model_conf = dataclasses.asdict(cfg)  # complete: label names and quality stats go into model.pt
        model = MultiTaskReward(cfg)
        if table is not None:
            model.set_code_table(table)
        if args.init_ctc_from_tokenizer:
            model.init_ctc_from_tokenizer(tok)
            logger.info("text path initialized from the CTC head of %s", args.tokenizer_dir)
        logger.info("reward model: heads %s, quality %s, %.2fM parameters",
                    {h: cfg.label_names.get(h, cfg.num_classes(h)) for h in model.heads}, cfg.quality,
                    model.num_params() / 1e6)
        return model

    def build_datasets(self, args):
        names = args.model_conf["label_names"]
        return (RewardDataset(args.train_dir, args.train_data_dir, names),
                RewardDataset(args.valid_dir, args.valid_data_dir, names), collate_reward)

    def compute_loss(self, model, batch):
        m = unwrap_model(model)
        c = m.config
        speech, lens = batch["speech"], batch["speech_lens"]
        if model.training and (c.sub_prob > 0 or c.del_prob > 0):
            speech, lens = corrupt_tokens(speech, lens, c.speech_vocab_size, c.sub_prob, c.del_prob, c.aug_utt_prob)
        out = model(speech, lens)
        return multitask_loss(m, out, batch)

    def evaluate(self, args, model, valid_loader) -> dict:
        decode = build_text_decoder(self._token_list(args), args.bpemodel)
        stats = evaluate_reward(model, valid_loader, decode)
        stats["dev_utts"] = stats.pop("utts")
        return {**stats, "num_params": model.num_params(), "train_seconds": round(time.time() - self._start, 1)}
