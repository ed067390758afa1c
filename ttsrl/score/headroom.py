"""The proxy reading of sampled codec-LM candidates, and how much of the best-of-N headroom a model captures.

The proxy: every candidate's speech tokens are read by the speech tokenizer's CTC head (greedy)
and scored against the text, as stage 3 scores the golden tokens. No synthesis and no judge:
seconds for a dev set (``ttsrl.bin.eval_samples`` reports it for one samples dir).

The headroom (``ttsrl.bin.headroom``, stage 9): the base LM samples N candidates per dev text;
the best of them by a reward reads at ``CER_best``, all of them on average at ``CER_base``. A
method that learned what the candidates already contain moves its own samples' CER toward
``CER_best``::

    headroom_captured = (CER_base - CER_method) / (CER_base - CER_best)

0: no better than the base; 1: as good as picking the best of N by the reward every time;
negative: worse than the base; above 1: beyond the candidates. Undefined (None) when the best of
N is no better than the average.

Usage::

    cers = ctc_cers(tokenizer, ctc_tok, {key: tokens}, {key: text ids})     # key -> (errors, chars)
    rates = {k: 100 * e / max(n, 1) for k, (e, n) in cers.items()}
    best = best_of_n_cer(rewards, rates)                                     # {utt: CER of its best}
    headroom_captured(mean(rates), cer_method, mean(best.values()))
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np
import torch

from ttsrl.data.candidates import parse_candidate_key, read_candidates
from ttsrl.data.datadir import DataDirError
from ttsrl.data.token_dataset import ctc_text_path, pad_1d, read_id_file
from ttsrl.models.speech_tokenizer import char_errors
from ttsrl.utils.fileio import atomic_write_text

__all__ = ["best_of_n_cer", "candidates_with_refs", "ctc_cers", "file_stamp", "headroom_captured", "headroom_table", "is_done", "mark_done",
           "proxy_cers"]


@torch.no_grad()
def ctc_cers(model, ctc_tok, seqs: Mapping, refs: Mapping, batch_size: int = 64) -> dict[str, tuple[int, int]]:
    """``{key: (character edits, reference characters)}`` of token sequences ``{key: ids}`` read by the
    tokenizer's CTC head (greedy), against ``refs`` ``{key: CTC unit ids}``; ``ctc_tok.decode`` turns
    both into text, so the rate is a CER whatever the units."""
    keys = sorted(seqs, key=lambda k: len(seqs[k]))
    out = {}
    for b in range(0, len(keys), batch_size):
        chunk = keys[b : b + batch_size]
        toks, lens = pad_1d([torch.as_tensor(np.asarray(seqs[k], dtype=np.int64).reshape(-1)) for k in chunk])
        hyps = model.ctc_decode(toks, lens.clamp(min=1))
        for k, h in zip(chunk, hyps, strict=True):
            out[k] = char_errors([refs[k]], [h], ctc_tok.decode)
    return out


def best_of_n_cer(rewards: Mapping[str, float], cers: Mapping[str, float]) -> dict[str, float]:
    """``{utt: CER of the candidate with the highest reward}`` over candidates keyed ``<utt>-c<k>`` (ties:
    the lowest k). Candidates without a reward are not chosen; an utterance with none is left out."""
    best: dict[str, tuple[float, int, str]] = {}
    for key in cers:
        if key not in rewards:
            continue
        utt, k = parse_candidate_key(key)
        cand = (float(rewards[key]), -k, key)
        if utt not in best or cand > best[utt]:
            best[utt] = cand
    return {utt: float(cers[key]) for utt, (_, _, key) in best.items()}


def headroom_captured(cer_base: float, cer_method: float, cer_best: float) -> float | None:
    """``(CER_base - CER_method) / (CER_base - CER_best)``; None when the best of N is no better than the base."""
    gap = cer_base - cer_best
    if not gap > 0:
        return None
    return (cer_base - cer_method) / gap


# --------------------------------------------------------------------------- the stage-9 pipeline pieces
def file_stamp(path: str) -> list:
    """What identifies a model file's content cheaply: its absolute path, size and modification time."""
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def is_done(folder: str, stamp) -> bool:
    """``folder/.done`` exists and holds ``stamp`` (what made it): the work need not be redone."""
    marker = os.path.join(folder, ".done")
    if not os.path.isfile(marker):
        return False
    with open(marker, encoding="utf-8") as f:
        try:
            return json.load(f) == json.loads(json.dumps(stamp))
        except ValueError:
            return False


def mark_done(folder: str, stamp) -> None:
    atomic_write_text(os.path.join(folder, ".done"), json.dumps(stamp) + "\n")


def candidates_with_refs(samples_dir: str, refs: Mapping, refs_from: str) -> tuple[dict, dict]:
    """``({key: token ids}, {key: reference ids})`` of every candidate of a samples dir, its utterance's
    reference taken from ``refs`` (read from ``refs_from``, named when an utterance is missing)."""
    cands = read_candidates(samples_dir)
    seqs, cand_refs = {}, {}
    for key in cands.keys():
        utt, _ = parse_candidate_key(key)
        if utt not in refs:
            raise DataDirError(f"{samples_dir}: candidate {key}: utterance {utt} has no text in {refs_from}")
        seqs[key], cand_refs[key] = cands[key], refs[utt]
    if not seqs:
        raise DataDirError(f"{samples_dir}: no candidates")
    return seqs, cand_refs


def proxy_cers(samples_dir: str, token_dir: str, tokenizer, ctc_tok, batch_size: int = 64) -> dict[str, float]:
    """``{candidate key: CER (%)}`` of a samples dir read by the tokenizer's CTC head, against the token
    dir's transcripts in the CTC units (``ctc_text``)."""
    seqs, cand_refs = candidates_with_refs(samples_dir, read_id_file(ctc_text_path(token_dir)), token_dir)
    return {k: 100.0 * e / max(n, 1) for k, (e, n) in ctc_cers(tokenizer, ctc_tok, seqs, cand_refs,
                                                               batch_size).items()}


def headroom_table(base_cers: Mapping[str, float], best_by: Mapping[str, Mapping[str, float]],
                   model_cers: Mapping[str, Mapping[str, float]], model_reward: Mapping[str, str]) -> dict:
    """The numbers of the headroom report (CERs in %).

    ``base_cers``: every base candidate's CER; ``best_by``: ``{reward: {utt: CER of the best by it}}``;
    ``model_cers``: ``{tag: {key: CER}}`` of each model's candidates; ``model_reward``: the reward
    each model was trained with (a key of ``best_by``). Returns ``{"cer_base", "cer_best_of_n":
    {reward: CER}, "models": {tag: {"cer", "reward", "cer_best_of_n", "headroom_captured"}}}``.
    """
    cer_base = float(np.mean(list(base_cers.values())))
    best = {r: float(np.mean(list(v.values()))) for r, v in best_by.items() if v}
    models = {}
    for tag, cers in model_cers.items():
        r = model_reward[tag]
        cer = float(np.mean(list(cers.values())))
        models[tag] = {"cer": cer, "reward": r, "cer_best_of_n": best.get(r),
                       "headroom_captured": headroom_captured(cer_base, cer, best[r]) if r in best else None}
    return {"cer_base": cer_base, "cer_best_of_n": best, "models": models}
