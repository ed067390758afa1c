"""Preference pairs (DPO) and best-of-N lists (RAFT) from scored speech-token candidates.

Inputs: a samples dir (``tokens.scp`` keyed ``<utt>-c<k>``, see ``ttsrl.sample.generate``),
its ``rewards.tsv`` (``ttsrl.align.rewards``: a header ``key ... reward``) and, for
golden pairs, the set's token dir (``speech.scp``: the ground-truth tokens).

Modes:

``best_worst``  per utterance, chosen = the highest-reward candidate, rejected = the
                lowest. Dropped and counted: identical chosen and rejected tokens
                (``dropped_identical``), equal rewards (``dropped_tie``), a reward gap
                below ``margin`` (``dropped_margin``), a single candidate (``dropped_single``).
``golden``      chosen = the golden tokens (key ``<utt>``, reward null), rejected = the
                lowest-reward candidate (with rewards) or candidate ``c0`` (without).
                Identical tokens are dropped; the margin does not apply.
``best``        best-of-N for RAFT: chosen = the highest-reward candidate, rejected null.

Outputs (each written atomically) in ``out_dir``::

    pairs.jsonl         {"utt", "chosen": [ids], "rejected": [ids] | null, "chosen_reward",
                         "rejected_reward", "chosen_key", "rejected_key", "mode"} per line
    pairs_summary.json  counts (pairs, dropped_*) and reward mean/std of chosen, rejected, all
    rewards_hist.png    reward distribution of all candidates, chosen and rejected

Within an utterance, ties for the best go to the lowest ``k`` and ties for the worst to
the highest ``k``, so a rerun gives the same pairs.

Usage::

    from ttsrl.align.pairs import make_pairs

    make_pairs("exp/base/samples/train", "exp/base/pairs/train", mode="best_worst", margin=0.1)
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ttsrl.align.rewards import parse_candidate_key, read_candidates
from ttsrl.data.arrays import read_scp
from ttsrl.data.datadir import DataDirError
from ttsrl.utils.fileio import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

MODES = ("best_worst", "golden", "best")


@dataclass
class RewardTable:
    """``rewards.tsv``: ``values[key][column]`` and ``line[key]`` (1-based, for messages)."""

    path: str
    columns: list[str]
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    line: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{self.path}:{self.line[key]}"

    def column(self, name: str) -> dict[str, float]:
        if name not in self.columns:
            raise ValueError(f"{self.path}: no column {name!r} (columns: {', '.join(self.columns)})")
        return {k: v[name] for k, v in self.values.items()}


def read_rewards(path: str) -> RewardTable:
    """Reads ``rewards.tsv``; errors name the file and line (bad header, key, number, duplicate)."""
    if not os.path.isfile(path):
        raise DataDirError(f"rewards file not found: {path}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or lines[0].split("\t")[0] != "key":
        raise DataDirError(f"{path}:1: expected a header line 'key<TAB>...<TAB>reward'")
    columns = lines[0].split("\t")[1:]
    if not columns:
        raise DataDirError(f"{path}:1: the header names no reward column")
    table = RewardTable(path, columns)
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(columns) + 1:
            raise DataDirError(f"{path}:{i}: {len(parts)} fields, the header has {len(columns) + 1}")
        key = parts[0]
        try:
            parse_candidate_key(key)
        except ValueError as e:
            raise DataDirError(f"{path}:{i}: {e}") from None
        if key in table.values:
            raise DataDirError(f"{path}:{i}: duplicate key {key} (first on line {table.line[key]})")
        try:
            vals = {c: float(v) for c, v in zip(columns, parts[1:], strict=True)}
        except ValueError:
            raise DataDirError(f"{path}:{i}: {key}: not a number among {parts[1:]}") from None
        table.values[key] = vals
        table.line[key] = i
    return table


def group_candidates(keys) -> dict[str, list[tuple[int, str]]]:
    """``{utt: [(k, "<utt>-c<k>"), ...]}`` of candidate keys, utterances and candidates in order."""
    by_utt: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for key in keys:
        utt, k = parse_candidate_key(key)
        by_utt[utt].append((k, key))
    return {u: sorted(v) for u, v in sorted(by_utt.items())}


def _ids(tokens: Mapping[str, np.ndarray], key: str) -> list[int]:
    return [int(t) for t in np.asarray(tokens[key]).reshape(-1)]


def _pair(utt, mode, chosen_key, chosen, chosen_reward, rejected_key=None, rejected=None, rejected_reward=None):
    return {"utt": utt, "chosen": chosen, "rejected": rejected, "chosen_reward": chosen_reward,
            "rejected_reward": rejected_reward, "chosen_key": chosen_key, "rejected_key": rejected_key, "mode": mode}


def best_and_worst(cands: list[tuple[int, str]], reward: Mapping[str, float]) -> tuple[str, str]:
    """Keys of the highest- and the lowest-reward candidate of one utterance (``group_candidates``)."""
    best = max(cands, key=lambda c: (reward[c[1]], -c[0]))[1]  # ties: lowest k
    worst = min(cands, key=lambda c: (reward[c[1]], -c[0]))[1]  # ties: highest k
    return best, worst


def _new_counts() -> dict[str, int]:
    return {"utts": 0, "pairs": 0, "dropped_margin": 0, "dropped_tie": 0, "dropped_identical": 0,
            "dropped_single": 0}


def best_worst_pairs(
    reward: Mapping[str, float], tokens: Mapping[str, np.ndarray], margin: float = 0.0
) -> tuple[list[dict], dict[str, int]]:
    """Best-vs-worst pair per utterance of the scored candidates ``reward`` (keys ``<utt>-c<k>``)."""
    pairs, counts = [], _new_counts()
    for utt, cands in group_candidates(reward).items():
        counts["utts"] += 1
        if len(cands) < 2:
            counts["dropped_single"] += 1
            continue
        best, worst = best_and_worst(cands, reward)
        chosen, rejected = _ids(tokens, best), _ids(tokens, worst)
        gap = reward[best] - reward[worst]
        if chosen == rejected:
            counts["dropped_identical"] += 1
        elif gap == 0:
            counts["dropped_tie"] += 1
        elif gap < margin:
            counts["dropped_margin"] += 1
        else:
            pairs.append(_pair(utt, "best_worst", best, chosen, reward[best], worst, rejected, reward[worst]))
    counts["pairs"] = len(pairs)
    return pairs, counts


def golden_pairs(
    golden: Mapping[str, np.ndarray],
    tokens: Mapping[str, np.ndarray],
    reward: Mapping[str, float] | None = None,
    golden_source: str = "golden tokens",
) -> tuple[list[dict], dict[str, int]]:
    """Golden-vs-sample pair per utterance: the worst candidate by ``reward``, or ``c0`` without rewards.

    An utterance missing from ``golden`` raises, naming it and ``golden_source``.
    """
    pairs, counts = [], _new_counts()
    for utt, cands in group_candidates(reward if reward is not None else tokens.keys()).items():
        counts["utts"] += 1
        if utt not in golden:
            raise DataDirError(f"{golden_source}: no golden tokens for utterance {utt}")
        if reward is not None:
            worst = best_and_worst(cands, reward)[1]
        else:
            worst = next((key for k, key in cands if k == 0), cands[0][1])
        chosen, rejected = _ids(golden, utt), _ids(tokens, worst)
        if chosen == rejected:
            counts["dropped_identical"] += 1
            continue
        pairs.append(_pair(utt, "golden", utt, chosen, None, worst, rejected,
                           None if reward is None else reward[worst]))
    counts["pairs"] = len(pairs)
    return pairs, counts


def best_of_n(reward: Mapping[str, float], tokens: Mapping[str, np.ndarray]) -> tuple[list[dict], dict[str, int]]:
    """The highest-reward candidate of every utterance (RAFT's fine-tuning set), rejected null."""
    pairs, counts = [], _new_counts()
    for utt, cands in group_candidates(reward).items():
        counts["utts"] += 1
        best = best_and_worst(cands, reward)[0]
        pairs.append(_pair(utt, "best", best, _ids(tokens, best), reward[best]))
    counts["pairs"] = len(pairs)
    return pairs, counts


def _stats(values: list[float]) -> dict[str, float | None]:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return {"mean": float(v.mean()) if len(v) else None, "std": float(v.std()) if len(v) else None}


def summarize(pairs: list[dict], counts: dict[str, int], all_rewards: list[float], mode: str, margin: float) -> dict:
    chosen = _stats([p["chosen_reward"] for p in pairs])
    rejected = _stats([p["rejected_reward"] for p in pairs])
    every = _stats(list(all_rewards))
    return {"mode": mode, "margin": margin, **counts,
            "chosen_reward_mean": chosen["mean"], "chosen_reward_std": chosen["std"],
            "rejected_reward_mean": rejected["mean"], "rejected_reward_std": rejected["std"],
            "all_reward_mean": every["mean"], "all_reward_std": every["std"], "candidates_scored": len(all_rewards)}


def plot_reward_hist(path: str, pairs: list[dict], all_rewards: list[float], title: str = "") -> bool:
    """Histogram of all candidates' rewards, the chosen and the rejected; False (nothing written) without rewards."""
    chosen = [p["chosen_reward"] for p in pairs if p["chosen_reward"] is not None]
    rejected = [p["rejected_reward"] for p in pairs if p["rejected_reward"] is not None]
    if not all_rewards and not chosen and not rejected:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [x for x in (*all_rewards, *chosen, *rejected) if math.isfinite(x)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    fig, ax = plt.subplots(figsize=(7, 4))
    for data, label, color in ((all_rewards, "all candidates", "0.6"), (chosen, "chosen", "tab:green"),
                               (rejected, "rejected", "tab:red")):
        if data:
            ax.hist(data, bins=bins, alpha=0.5, label=f"{label} ({len(data)})", color=color)
    ax.set_xlabel("reward")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return True


def make_pairs(
    samples_dir: str,
    out_dir: str,
    mode: str = "best_worst",
    rewards: str | None = None,
    token_dir: str | None = None,
    margin: float = 0.0,
    reward_column: str = "reward",
) -> dict:
    """Reads the inputs, builds the pairs of ``mode``, writes the outputs; returns the summary.

    ``rewards`` defaults to ``<samples_dir>/rewards.tsv`` (required except for ``golden``,
    where without the file the rejected sample is ``c0``). A scored candidate missing from
    the samples' tokens raises, naming the rewards file and line.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    if margin < 0:
        raise ValueError(f"margin must not be negative, got {margin}")
    tokens = read_candidates(samples_dir)
    rewards_path = rewards or os.path.join(samples_dir, "rewards.tsv")
    reward: dict[str, float] | None = None
    if rewards is not None or mode != "golden" or os.path.isfile(rewards_path):
        table = read_rewards(rewards_path)
        reward = table.column(reward_column)
        for key in reward:
            if key not in tokens:
                raise DataDirError(f"{table.where(key)}: candidate {key} has no tokens in {samples_dir}")
        unscored = sum(1 for k in tokens.keys() if k not in reward)
        if unscored:
            logger.warning("%s: %d candidates have no reward in %s: left out", samples_dir, unscored, rewards_path)
    else:
        for key in tokens.keys():
            try:
                parse_candidate_key(key)
            except ValueError as e:
                raise DataDirError(f"{samples_dir}: {e}") from None
    if mode == "best_worst":
        pairs, counts = best_worst_pairs(reward, tokens, margin)
    elif mode == "best":
        pairs, counts = best_of_n(reward, tokens)
    else:
        if token_dir is None:
            raise ValueError("mode golden needs the token dir (its speech.scp holds the golden tokens)")
        scp = os.path.join(token_dir, "speech.scp")
        pairs, counts = golden_pairs(read_scp(scp), tokens, reward, golden_source=scp)
    all_rewards = list(reward.values()) if reward is not None else []
    summary = summarize(pairs, counts, all_rewards, mode, margin)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(os.path.join(out_dir, "pairs.jsonl"), "".join(json.dumps(p) + "\n" for p in pairs))
    atomic_write_text(os.path.join(out_dir, "pairs_summary.json"), json.dumps(summary, indent=2) + "\n")
    if not plot_reward_hist(os.path.join(out_dir, "rewards_hist.png"), pairs, all_rewards,
                            f"{os.path.basename(os.path.normpath(samples_dir))}: {mode}"):
        logger.info("no rewards: rewards_hist.png not written")
    logger.info("%s: %d pairs from %d utterances (dropped: %d margin, %d tie, %d identical, %d single) -> %s",
                mode, counts["pairs"], counts["utts"], counts["dropped_margin"], counts["dropped_tie"],
                counts["dropped_identical"], counts["dropped_single"], out_dir)
    return summary
