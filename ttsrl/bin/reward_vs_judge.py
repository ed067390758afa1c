#!/usr/bin/env python3
"""Does the token-level reward rank candidates as the judge does? Spearman of reward vs judge CER.

For the candidates of the first ``--num_utts`` utterances of a sampled set (stage 5's
``tokens.scp`` and stage 6's ``rewards.tsv``), each candidate is synthesized (its tokens ->
flow -> vocoder, with the utterance's prompt) and transcribed by the judge, and the Spearman
correlation between the reward column (default ``text``, the CTC log-likelihood per text
token) and the judge's per-candidate CER is reported. A good reward correlates *negatively*
with CER; ``spearman_vs_judge`` is reported with its sign. Beside it, what the preference data
sees (``pair_agreement``): how often the judge prefers the reward's best-vs-worst pick, and how
many CER points best-of-N by the reward gains. Written to ``--metrics_json``
(e.g. exp/reward/metrics.json) and printed as JSON.

Usage:
    python -m ttsrl.bin.reward_vs_judge --samples_dir exp/base/samples/dev --data_dir data/dev \\
        --tokenizer_dir exp/tokenizer --flow exp/base/flow/model.pt --judge_path exp/judge/model.pt \\
        --out_dir exp/reward/vs_judge/dev --metrics_json exp/reward/metrics.json [--num_utts 40]
"""
import argparse
import csv
import json
import logging
import math
import os

from ttsrl.utils.cli import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples_dir", required=True, help="tokens.scp and rewards.tsv of a sampled set")
    p.add_argument("--data_dir", required=True, help="the set's data dir (text, prompt.scp, prompt_text)")
    p.add_argument("--tokenizer_dir", required=True)
    p.add_argument("--flow", required=True, help="flow-matching model.pt")
    p.add_argument("--judge", default="ctc", help="ASR judge of ttsrl.bin.score")
    p.add_argument("--judge_path", required=True, help="the judge's checkpoint")
    p.add_argument("--out_dir", required=True, help="candidate data dir, audio and scores go here")
    p.add_argument("--num_utts", type=int, default=40, help="utterances whose candidates are synthesized")
    p.add_argument("--reward_column", default="text", help="column of rewards.tsv to correlate")
    p.add_argument("--flow_n_steps", type=int, default=10)
    p.add_argument("--metrics_json", default=None, help="merge spearman_vs_judge into this file")
    return p


def candidate_data_dir(data_dir: str, keys: list[str], out: str) -> None:
    """A data dir whose utterances are the candidates ``<utt>-c<k>`` (text and prompt of ``utt``)."""
    from ttsrl.align.rewards import parse_candidate_key
    from ttsrl.data.datadir import DataDir

    d = DataDir.load(data_dir)
    c = DataDir()
    for key in keys:
        utt, _ = parse_candidate_key(key)
        c.text[key] = d.text[utt]
        c.utt2spk[key] = d.utt2spk[utt]
        c.wav_scp[key] = d.wav_scp[utt]
        for name, m in d.extra.items():
            if utt in m and name != "feats.scp":
                c.extra.setdefault(name, {})[key] = m[utt]
    c.write(out)


def read_tsv(path: str, column: str) -> dict[str, float]:
    """``{first column: float(column)}`` of a TSV with a header; empty and NaN cells are skipped."""
    with open(path, encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if column not in (reader.fieldnames or []):
            raise SystemExit(f"reward_vs_judge: {path} has no column {column!r} (columns: {reader.fieldnames})")
        key = reader.fieldnames[0]
        return {r[key]: float(r[column]) for r in reader if r.get(column) not in (None, "", "nan", "None")}


def pair_agreement(rewards: dict[str, float], cer: dict[str, float]) -> dict:
    """How the judge sees the reward's choices, per utterance with two or more judged candidates.

    ``pair_agreement_vs_judge``: share of best-vs-worst pairs (by reward, as stage 6 builds them)
    whose chosen candidate the judge reads with a lower CER (a CER tie counts one half; a reward
    tie is no pair). ``best_of_n_gain``: mean CER of all candidates minus the CER of the reward's
    best one, in CER points, averaged over utterances; ``best_of_n_gain_oracle``: the same for the
    judge's own best, the most any selection could gain.
    """
    from ttsrl.align.pairs import best_and_worst, group_candidates

    agree, pairs, gain, oracle = 0.0, 0, [], []
    for cands in group_candidates(k for k in rewards if k in cer).values():
        if len(cands) < 2:
            continue
        best, worst = best_and_worst(cands, rewards)
        mean = sum(cer[k] for _, k in cands) / len(cands)
        gain.append(mean - cer[best])
        oracle.append(mean - min(cer[k] for _, k in cands))
        if rewards[best] > rewards[worst]:
            pairs += 1
            agree += 1.0 if cer[best] < cer[worst] else 0.5 if cer[best] == cer[worst] else 0.0
    mean_or_none = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    return {"pair_agreement_vs_judge": round(agree / pairs, 4) if pairs else None, "pair_agreement_pairs": pairs,
            "best_of_n_gain": mean_or_none(gain), "best_of_n_gain_oracle": mean_or_none(oracle)}


def main(argv=None) -> int:
    setup_logging("INFO")
    args = get_parser().parse_args(argv)
    from scipy.stats import spearmanr

    from ttsrl.align.rewards import parse_candidate_key
    from ttsrl.sample.sampler import SamplingConfig
    from ttsrl.sample.synthesize import FlowOptions, TTSPipeline, read_requests, synthesize_requests
    from ttsrl.score.asr import JudgeUnavailable
    from ttsrl.score.scorer import ScoreConfig, load_test_set, run_scoring
    from ttsrl.train.distributed import get_device
    from ttsrl.utils.fileio import write_metrics

    rewards = read_tsv(os.path.join(args.samples_dir, "rewards.tsv"), args.reward_column)
    utts = sorted({parse_candidate_key(k)[0] for k in rewards})[: args.num_utts]
    keys = sorted(k for k in rewards if parse_candidate_key(k)[0] in set(utts))
    data = os.path.join(args.out_dir, "data")
    candidate_data_dir(args.data_dir, keys, data)
    # each candidate's tokens -> flow (prompted with its utterance's prompt) -> vocoder
    tts = TTSPipeline.from_dirs(None, args.flow, args.tokenizer_dir, device=get_device())
    requests = read_requests(data, None, os.path.join(args.samples_dir, "tokens.scp"))
    synthesize_requests(tts, requests, args.out_dir, SamplingConfig(), FlowOptions(n_steps=args.flow_n_steps))
    score_dir = os.path.join(args.out_dir, "score")
    try:
        run_scoring(load_test_set(data_dir=data), score_dir,
                    ScoreConfig(metrics=("cer",), judge=args.judge, judge_path=args.judge_path, sim="none"),
                    wav_scp=os.path.join(args.out_dir, "wav.scp"))
    except (ValueError, OSError, JudgeUnavailable) as e:
        raise SystemExit(f"reward_vs_judge: scoring failed: {e}") from None
    cer = read_tsv(os.path.join(score_dir, "per_utt.tsv"), "cer")
    common = sorted(set(cer) & set(keys))
    rho, pval = spearmanr([rewards[k] for k in common], [cer[k] for k in common])
    if not math.isfinite(rho):  # a constant column (e.g. every candidate at 100% CER): undefined
        logging.warning("Spearman undefined over %d candidates: reward or CER is constant", len(common))
        rho = pval = None
    out = {"spearman_vs_judge": None if rho is None else round(float(rho), 4),
           "spearman_vs_judge_p": None if pval is None else float(pval),
           "spearman_vs_judge_candidates": len(common), "spearman_vs_judge_reward": args.reward_column,
           **pair_agreement(rewards, cer)}
    if args.metrics_json:
        write_metrics(args.metrics_json, out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
