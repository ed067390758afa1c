"""Preference pairs as LM batches: ``pairs.jsonl`` + the set's token dir -> padded chosen/rejected rows.

A pair file (``ttsrl.bin.make_pairs``) holds one JSON object per line::

    {"utt", "chosen": [speech ids], "rejected": [speech ids] | null, "chosen_reward",
     "rejected_reward", "chosen_key", "rejected_key", "mode"}

The text (and, with prompts, the zero-shot prompt's text and speech tokens) of ``utt`` come
from the token dir, as when the candidates were sampled (``ttsrl.sample.generate``): the LM
reads ``prompt_text + text`` and its speech region is ``prompt speech + candidate``, the
prompt being given, not predicted. ``reward_text`` is the utterance's transcript in the
speech tokenizer's CTC units (the token dir's ``ctc_text``), what a reward model scores.
``index`` is the pair's position in the file (0-based), the key of the reference log-prob
cache (``ttsrl.align.ref_cache``).

Usage::

    ds = PairDataset("dump/tokens/train", "exp/base/pairs/train/pairs.jsonl", with_prompt=True,
                     need_rejected=True)
    loader = build_loader(ds, ds.lengths, max_tokens=4000, collate_fn=collate_pairs)
    batch = next(iter(loader))
    logp, mask, out = forward_rows(model, batch, ("chosen", "rejected"))   # (2B, T) rows: chosen then rejected
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ttsrl.data.datadir import DataDirError
from ttsrl.data.token_dataset import TokenDataset, ctc_text_path, lm_input, lm_speech, pad_1d, read_id_file

logger = logging.getLogger(__name__)

__all__ = ["PairDataset", "collate_pairs", "forward_rows", "read_pairs", "speech_rows"]


def read_pairs(path: str) -> list[dict]:
    """The records of a ``pairs.jsonl`` in file order; errors name the file and line."""
    if not os.path.isfile(path):
        raise DataDirError(f"pairs file not found: {path}")
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataDirError(f"{path}:{n}: not valid JSON: {e}") from e
            if not isinstance(rec, dict) or "utt" not in rec or "chosen" not in rec:
                raise DataDirError(f"{path}:{n}: a pair needs at least 'utt' and 'chosen'")
            for key in ("chosen", "rejected"):
                v = rec.get(key)
                if key == "rejected" and v is None:
                    continue
                if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                    raise DataDirError(f"{path}:{n}: {key!r} must be a list of integer speech ids")
            rec["_line"] = n
            pairs.append(rec)
    if not pairs:
        raise DataDirError(f"{path}: no pairs")
    return pairs


class PairDataset(Dataset):
    """(text, prompt, chosen, rejected) per pair, in file order.

    Args:
        token_dir: the set's token dir (text, speech.scp, optional prompt_text/prompt_speech.scp).
        pairs: a ``pairs.jsonl``; None: every utterance of the token dir with its ground-truth
            speech tokens as ``chosen`` and no rejected (DiffRO from the training set).
        with_prompt: condition on the token dir's zero-shot prompts.
        need_rejected: drop (and count) pairs without a rejected sequence (DPO).
        rows: LM rows per pair in a training forward (2 when chosen and rejected are both
            run), for the bucketing lengths.
        speech_vocab_size: when given, ids outside [0, V) are an error naming the line.
    """

    def __init__(self, token_dir: str, pairs: str | None = None, with_prompt: bool = False,
                 need_rejected: bool = False, rows: int = 1, speech_vocab_size: int | None = None):
        self.tokens = TokenDataset(token_dir, with_prompt=with_prompt)
        ctc = ctc_text_path(token_dir)
        self.reward_text = self.tokens.text if ctc == self.tokens.text_path else read_id_file(ctc)
        self.with_prompt = with_prompt
        self.rows = rows
        self.path = pairs
        if pairs is None:
            records = [{"utt": u, "chosen": None, "rejected": None, "_line": i + 1, "_index": i}
                       for i, u in enumerate(self.tokens.utts)]
        else:
            records = read_pairs(pairs)
            for i, rec in enumerate(records):
                rec["_index"] = i
                if rec["utt"] not in self.tokens.text:
                    raise DataDirError(f"{pairs}:{rec['_line']}: utterance {rec['utt']!r} is not in {token_dir}")
                if rec["utt"] not in self.reward_text:
                    raise DataDirError(f"{pairs}:{rec['_line']}: utterance {rec['utt']!r} is not in {ctc}")
                if speech_vocab_size is not None:
                    for key in ("chosen", "rejected"):
                        bad = [x for x in rec.get(key) or [] if not 0 <= x < speech_vocab_size]
                        if bad:
                            raise DataDirError(f"{pairs}:{rec['_line']}: {key} has ids outside "
                                               f"[0, {speech_vocab_size}): {bad[:5]}")
        self.dropped = 0
        if need_rejected:
            kept = [r for r in records if r.get("rejected") is not None]
            self.dropped = len(records) - len(kept)
            if self.dropped:
                logger.warning("%s: %d of %d lines have no rejected sequence and are skipped",
                               pairs, self.dropped, len(records))
            records = kept
        if not records:
            raise DataDirError(f"{pairs or token_dir}: no usable pairs")
        self.records = records

    def _chosen(self, rec: dict) -> list[int] | np.ndarray:
        return rec["chosen"] if rec["chosen"] is not None else np.asarray(self.tokens.speech[rec["utt"]])

    @property
    def lengths(self) -> np.ndarray:
        """Padded LM columns per pair (text + prompt + longest sequence + specials) x rows."""
        out = []
        for rec in self.records:
            u = rec["utt"]
            n = len(self.tokens.text[u]) + 3
            if self.with_prompt:
                n += len(self.tokens.prompt_text[u]) + len(self.tokens.prompt_speech[u])
            # without pairs: the token dir's lengths (utt2num_tokens), not the arks
            seq = len(rec["chosen"]) if rec["chosen"] is not None else self.tokens.speech_lens[u]
            if rec.get("rejected") is not None:
                seq = max(seq, len(rec["rejected"]))
            out.append((n + seq) * self.rows)
        return np.array(out)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        u = rec["utt"]
        text = torch.tensor(self.tokens.text[u], dtype=torch.long)
        ptext = pspeech = None
        if self.with_prompt:
            ptext = torch.tensor(self.tokens.prompt_text[u], dtype=torch.long)
            pspeech = torch.from_numpy(np.asarray(self.tokens.prompt_speech[u], dtype=np.int64))
        return {"index": rec["_index"], "utt": u, "target_text": text,
                "reward_text": torch.tensor(self.reward_text[u], dtype=torch.long),
                "chosen": torch.as_tensor(np.asarray(self._chosen(rec), dtype=np.int64)),
                "rejected": None if rec.get("rejected") is None else torch.tensor(rec["rejected"], dtype=torch.long),
                **lm_input(text, ptext, pspeech)}  # text: prompt text + text; prompt: the prompt's speech


def speech_rows(prompts: Sequence[torch.Tensor], seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``prompt + seq`` per row (the LM's speech region, :func:`ttsrl.data.token_dataset.lm_speech`),
    right-padded: (B, Ts) and lengths (B,)."""
    return pad_1d([lm_speech(s, p) for p, s in zip(prompts, seqs, strict=True)])


def collate_pairs(items: list[dict]) -> dict:
    """A batch of pairs; rows without a rejected sequence repeat the chosen one (``has_rejected`` False).

    Keys: utts, index (B,), text/text_lens (prompt text + text), target_text/target_text_lens (the
    text in the LM's units), reward_text/reward_text_lens (the text in the CTC units, for a reward),
    prompt/prompt_lens, chosen/chosen_lens and rejected/rejected_lens (prompt + sequence),
    has_rejected (B,) bool.
    """
    prompts = [it["prompt"] for it in items]
    text, text_lens = pad_1d([it["text"] for it in items])
    target, target_lens = pad_1d([it["target_text"] for it in items])
    reward_text, reward_text_lens = pad_1d([it["reward_text"] for it in items])
    prompt, prompt_lens = pad_1d(prompts)  # (B, 0) without prompts
    chosen, chosen_lens = speech_rows(prompts, [it["chosen"] for it in items])
    has_rej = [it["rejected"] is not None for it in items]
    rejected, rejected_lens = speech_rows(
        prompts, [it["rejected"] if h else it["chosen"] for it, h in zip(items, has_rej, strict=True)])
    return {"utts": [it["utt"] for it in items], "index": torch.tensor([it["index"] for it in items]),
            "text": text, "text_lens": text_lens, "target_text": target, "target_text_lens": target_lens,
            "reward_text": reward_text, "reward_text_lens": reward_text_lens,
            "prompt": prompt, "prompt_lens": prompt_lens, "chosen": chosen, "chosen_lens": chosen_lens,
            "rejected": rejected, "rejected_lens": rejected_lens, "has_rejected": torch.tensor(has_rej)}


def _cat_padded(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    width = max(t.shape[1] for t in tensors)
    return torch.cat([F.pad(t, (0, width - t.shape[1])) for t in tensors])


def forward_rows(model, batch: dict, rows: Sequence[str] = ("chosen",), tags: torch.Tensor | None = None,
                 speech: tuple[torch.Tensor, torch.Tensor] | None = None):
    """One teacher-forced LM pass over the batch's ``rows`` stacked (e.g. chosen then rejected).

    ``model`` is called (so that DDP synchronizes); ``tags`` (len(rows) * B,) are the control
    tags of a model built with ``num_tags`` (None: tag 0 = "good" for such a model).
    ``speech`` = (ids, lens) replaces the rows' sequences (prompt included).
    Returns per-token log p(target) (R, T) (0 outside the mask), the mask of predicted
    positions (R, T) and the LMOutput (logits (R, T, V + 1)).
    """
    n = len(rows)
    if speech is None:
        speech_ids = _cat_padded([batch[r] for r in rows])
        speech_lens = torch.cat([batch[f"{r}_lens"] for r in rows])
    else:
        speech_ids, speech_lens = speech
    text = batch["text"].repeat(n, 1)
    text_lens = batch["text_lens"].repeat(n)
    prompt_lens = batch["prompt_lens"].repeat(n)
    core = model.module if hasattr(model, "module") else model
    if tags is None and core.config.num_tags > 0:
        tags = torch.zeros(text.shape[0], dtype=torch.long, device=text.device)
    out = model(text, text_lens, speech_ids, speech_lens, prompt_lens=prompt_lens, tags=tags)
    logp = out.logits.float().log_softmax(-1).gather(-1, out.target[..., None]).squeeze(-1)
    return logp.masked_fill(~out.mask, 0.0), out.mask, out
