"""Token-level rewards of speech-token candidates from the multi-task reward model.

:class:`TokenReward` scores candidates (ids, or soft one-hots for a differentiable
reward) with a weighted sum of components, each a number per candidate where higher is
better:

==========  ==========================================================================
text        log p_CTC(text | tokens) / text tokens (the reward model's CTC head;
            a text the tokens cannot hold gets ``infeasible_logprob_per_token``)
emotion     log p(target emotion | tokens)  (targets by name, per utterance)
gender      log p(target gender | tokens)
age         log p(target age | tokens)
quality     predicted quality in label units (e.g. MOS 1-5)
==========  ==========================================================================

``reward = sum_c weights[c] * component_c``. Components with weight 0 are still reported
when they can be computed (quality always, class components when targets are given).

:func:`score_samples_dir` scores a sampling output folder (``tokens.scp`` keyed
``<utt>-c<k>``, see ``ttsrl.sample.generate``) against its set's token dir (the transcripts
in the speech tokenizer's CTC units, ``ctc_text``, which the reward model's CTC head reads,
whatever the LM's text units are) and writes ``rewards.tsv``: a header
``key <components...> reward`` and one tab-separated line per candidate, read back by
:func:`ttsrl.align.pairs.read_rewards`.

Audio-level rewards (:class:`ttsrl.align.audio_reward.AudioReward`: flow + vocoder, then a
reward ASR, speaker similarity, F0 variance, DNSMOS) have the same interface,
``score(tokens, ..., utts=...) -> {component: (B,), "reward": (B,)}``, and
:func:`score_samples_dir` writes the same ``rewards.tsv`` for either, so that
``ttsrl.bin.make_pairs`` works with both.

Usage::

    from ttsrl.align.rewards import TokenReward
    from ttsrl.models.reward import load_reward_model

    scorer = TokenReward(load_reward_model("exp/reward"), weights={"text": 1.0, "emotion": 0.5})
    out = scorer.score([tok1, tok2], text=[ids1, ids2], targets={"emotion": ["happy", "sad"]})
    out["reward"], out["text"], out["emotion"], out["quality"]     # (B,) each
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ttsrl.data.candidates import candidate_sort_key, parse_candidate_key, read_candidates
from ttsrl.data.datadir import DataDirError, read_kv
from ttsrl.data.token_dataset import ctc_text_path, pad_1d, read_id_file
from ttsrl.models.ctc import greedy_ctc
from ttsrl.models.reward import CLASS_HEADS, MultiTaskReward
from ttsrl.models.speech_tokenizer import unit_error_rates
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

COMPONENTS: tuple[str, ...] = ("text", "emotion", "gender", "age", "quality")
DEFAULT_WEIGHTS = {"text": 1.0, "emotion": 0.0, "quality": 0.0, "gender": 0.0, "age": 0.0}
_TARGET_FILES = {"emotion": "utt2emo", "gender": "utt2gender", "age": "utt2age"}


def _as_padded(seqs: Any, lens: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A list of 1-D id sequences, or a padded tensor with ``lens`` -> (padded, lens)."""
    if torch.is_tensor(seqs) and seqs.dim() >= 2:
        if lens is None:
            lens = torch.full((seqs.shape[0],), seqs.shape[1], dtype=torch.long)
        return seqs, torch.as_tensor(lens, dtype=torch.long)
    rows = [torch.as_tensor(np.asarray(s, dtype=np.int64)).reshape(-1) for s in seqs]
    if not rows:
        raise ValueError("nothing to score: no sequences")
    if any(len(r) == 0 for r in rows):  # an empty sequence is padded to one token (pad_1d needs T >= 1)
        padded, lens = pad_1d([r if len(r) else torch.zeros(1, dtype=torch.long) for r in rows])
        return padded, torch.tensor([len(r) for r in rows], dtype=torch.long)
    return pad_1d(rows)


class TokenReward:
    """A weighted sum of the reward model's components; see the module docstring.

    ``weights`` default to text 1.0, everything else 0; a given mapping sets the weights
    it names and leaves the others at 0 (``{"emotion": 1.0}`` is emotion alone).
    """

    def __init__(self, model: MultiTaskReward, weights: Mapping[str, float] | None = None):
        w = dict(DEFAULT_WEIGHTS if weights is None else {**dict.fromkeys(COMPONENTS, 0.0), **weights})
        unknown = sorted(set(w) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown reward components {unknown}; choose from {', '.join(COMPONENTS)}")
        self.weights = {k: float(v) for k, v in w.items()}
        self.model = model.eval()
        for head in CLASS_HEADS:
            if self.weights[head] and head not in model.heads:
                raise ValueError(f"weight {head}={self.weights[head]} but the reward model has no {head} head")
        if self.weights["quality"] and model.quality_head is None:
            raise ValueError("weight quality is set but the reward model has no quality head")

    @property
    def needs_targets(self) -> list[str]:
        """Class components with a non-zero weight: their targets must be given."""
        return [h for h in CLASS_HEADS if self.weights[h]]

    def score(
        self,
        tokens: Sequence[Any] | torch.Tensor,
        lens: torch.Tensor | None = None,
        text: Sequence[Any] | torch.Tensor | None = None,
        text_lens: torch.Tensor | None = None,
        targets: Mapping[str, Sequence[str | int] | str] | None = None,
        utts: Sequence[str] | None = None,
        cer: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Components and ``reward`` ``(B,)`` of a batch of candidates.

        ``tokens``: a list of 1-D id sequences, a padded ``(B, T)`` id tensor, or soft
        one-hots ``(B, T, V)`` (with ``lens``; differentiable when they require grad);
        ``text``: likewise the text ids (needed unless the text weight is 0); ``targets``:
        ``{head: names or ids per candidate, or one name for all}``. ``utts`` (the
        candidates' utterances) is part of the interface for audio rewards and not used here.
        ``cer``: also ``out["cer"]`` ``(B,)``, the CER proxy (a rate, not a component): the
        greedy transcript of the same CTC pass against ``text`` (edits / text units).
        """
        targets = dict(targets or {})
        missing = [h for h in self.needs_targets if h not in targets]
        if missing:
            raise ValueError(f"reward components {missing} have a weight but no targets")
        x, lens = _as_padded(tokens, lens)
        B = x.shape[0]
        dev = self.model.device
        x, lens = x.to(dev), lens.to(dev)
        grad = torch.is_floating_point(x) and x.requires_grad
        out: dict[str, torch.Tensor] = {}
        with torch.set_grad_enabled(grad):
            res = self.model(x, lens)
            if text is not None:
                t, tl = _as_padded(text, text_lens)
                if t.shape[0] != B:
                    raise ValueError(f"{B} candidates but {t.shape[0]} texts")
                t, tl = t.to(dev), tl.to(dev)
                lp = self.model.ctc_logprob(res, t, tl)
                out["text"] = lp / tl.clamp(min=1).to(lp.dtype)
                if cer:
                    hyps = greedy_ctc(res.ctc_log_probs, res.ctc_lens)
                    refs = [t[i, : int(tl[i])].tolist() for i in range(B)]
                    out["cer"] = torch.tensor(unit_error_rates(refs, hyps), device=dev)
            elif self.weights["text"]:
                raise ValueError("the text component has a weight but no text was given")
            elif cer:
                raise ValueError("the CER proxy reads against the text, but no text was given")
            for head in CLASS_HEADS:
                if head not in targets or head not in self.model.heads:
                    if head in targets:
                        raise ValueError(f"targets for {head!r} but the reward model has no {head} head")
                    continue
                names = targets[head]
                names = [names] * B if isinstance(names, str | int) else list(names)
                if len(names) != B:
                    raise ValueError(f"{B} candidates but {len(names)} {head} targets")
                ids = self.model.label_ids(head, names)
                logp = torch.log_softmax(res.logits(head).float(), dim=-1)
                out[head] = logp.gather(1, ids[:, None]).squeeze(1)
            if res.quality is not None:
                out["quality"] = res.quality.float()
            reward = torch.zeros(B, device=dev)
            for c, w in self.weights.items():
                if w:
                    reward = reward + w * out[c]
            out["reward"] = reward
        return out


# --------------------------------------------------------------------------- samples dirs
def read_targets(data_dir: str | None, fixed: Mapping[str, str] | None, heads: Sequence[str]) -> dict:
    """``{head: {utt: name}}`` from a data dir's utt2emo/utt2gender/utt2age, or one name for every utterance."""
    out: dict[str, Any] = {}
    for head in heads:
        if fixed and head in fixed:
            out[head] = str(fixed[head])
        elif data_dir and os.path.isfile(os.path.join(data_dir, _TARGET_FILES[head])):
            out[head] = read_kv(os.path.join(data_dir, _TARGET_FILES[head]))
    return out


def score_samples_dir(
    scorer: Any,
    samples_dir: str,
    token_dir: str,
    out_path: str | None = None,
    targets: Mapping[str, Mapping[str, str] | str] | None = None,
    batch_size: int = 32,
) -> dict:
    """Scores every candidate of ``samples_dir`` and writes ``rewards.tsv`` (atomically); returns a summary.

    ``scorer``: a :class:`TokenReward` or an audio reward with the same ``score`` interface.

    ``targets``: ``{head: {utt: name} or one name}``. An utterance of the candidates that
    is missing from the token dir's ``ctc_text`` (or ``text`` in a token dir without it; or from a
    target file) raises, naming it.
    """
    out_path = out_path or os.path.join(samples_dir, "rewards.tsv")
    tokens = read_candidates(samples_dir)
    text_path = ctc_text_path(token_dir)  # the reward model's CTC units
    texts = read_id_file(text_path)
    targets = dict(targets or {})
    keys = list(tokens.keys())
    for key in keys:
        try:
            utt, _ = parse_candidate_key(key)
        except ValueError as e:
            raise DataDirError(f"{samples_dir}: {e}") from None
        if utt not in texts:
            raise DataDirError(f"{samples_dir}: candidate {key}: utterance {utt} is not in {text_path}")
        for head, t in list(targets.items()):
            if isinstance(t, str) or utt in t:
                continue
            if head in scorer.needs_targets:
                raise DataDirError(f"candidate {key}: utterance {utt} has no {head} target")
            logger.warning("utterance %s has no %s target: the %s component (weight 0) is left out", utt, head, head)
            del targets[head]
    arrays = {k: np.asarray(tokens[k]).reshape(-1) for k in keys}
    order = sorted(keys, key=lambda k: len(arrays[k]))  # similar lengths share a batch
    rows: dict[str, dict[str, float]] = {}
    columns: list[str] = []
    with torch.no_grad():
        for b in tqdm(range(0, len(order), batch_size), desc=f"scoring {os.path.basename(samples_dir.rstrip('/'))}",
                      unit="batch"):
            chunk = order[b : b + batch_size]
            utts = [parse_candidate_key(k)[0] for k in chunk]
            tg = {h: (t if isinstance(t, str) else [t[u] for u in utts]) for h, t in targets.items()}
            res = scorer.score([arrays[k] for k in chunk], text=[texts[u] for u in utts], targets=tg, utts=utts)
            columns = [c for c in res if c != "reward"] + ["reward"]
            for i, k in enumerate(chunk):
                rows[k] = {c: float(res[c][i]) for c in columns}
    lines = ["\t".join(["key", *columns])]
    for k in sorted(rows, key=candidate_sort_key):
        lines.append("\t".join([k, *(f"{rows[k][c]:.6g}" for c in columns)]))
    atomic_write_text(out_path, "\n".join(lines) + "\n")
    rewards = np.array([r["reward"] for r in rows.values()]) if rows else np.zeros(0)
    summary = {"candidates": len(rows), "columns": columns,
               "reward_mean": float(rewards.mean()) if len(rewards) else None,
               "reward_std": float(rewards.std()) if len(rewards) else None}
    logger.info("scored %d candidates of %s -> %s (mean reward %s)", len(rows), samples_dir, out_path,
                summary["reward_mean"])
    return summary
