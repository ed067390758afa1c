#!/usr/bin/env python3
"""Score the ground truth and every decoded model of the test sets (stage 9), into exp/results.json.

For each test set ``<data_root>/<set>``:

* ``ground_truth``: its own audio, with the CTC judge (``--gt_metrics``; SIM is left out:
  the audio is its own reference) plus the PER of the judge's transcripts (phonemized with
  espeak-ng) -> ``<exp_dir>/ground_truth/<set>/score``, and with the second-opinion judge
  (``--second_judge``, WER/CER stored as ``wer@<judge>``) -> ``.../score_<judge>``;
* every ``<exp_dir>/<model>/decode/<set>/wav.scp`` that exists (stage 8): the same judges
  with ``--metrics`` (SIM to the prompt, F0 variance, CTC NLL ...; with ``--emo_judge``
  also the judged emotion, for the ground truth too) ->
  ``<exp_dir>/<model>/decode/<set>/score`` and ``score_<judge>``.

Each output folder gets a ``.done`` marker; a folder whose marker exists is not scored again.
With ``--num_jobs N`` job K scores every N-th folder from the K-th; the jobs share
results.json (written under its file lock).

Usage:
    python -m ttsrl.bin.score_all --data_root data --exp_dir exp --test_sets "test test_hard" \\
        --judge_path exp/judge/model.pt --metrics wer,cer,sim,f0v,nll --results exp/results.json
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys

from ttsrl.utils.cli import LOG_LEVELS, add_job_args, setup_logging
from ttsrl.utils.jobs import job_share

logger = logging.getLogger("ttsrl.bin.score_all")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", required=True, help="folder of the test sets' data dirs (data/)")
    p.add_argument("--exp_dir", required=True, help="exp/: models' decode dirs, ground_truth/ is written here")
    p.add_argument("--test_sets", required=True, help="space- or comma-separated test set names")
    p.add_argument("--judge", default="ctc", help="main ASR judge")
    p.add_argument("--judge_path", default=None, help="its checkpoint (ctc: exp/judge/model.pt)")
    p.add_argument("--metrics", default="wer,cer,sim,f0v,nll", help="metrics of decoded models (add dnsmos)")
    p.add_argument("--gt_metrics", default="wer,cer,f0v,nll", help="metrics of the ground truth")
    p.add_argument("--emo_judge", default=None,
                   help="emotion judge (model.npz of ttsrl.bin.train_emotion_judge): adds metric emo to both lists")
    p.add_argument("--second_judge", default="pocketsphinx", help="second-opinion ASR judge ('none': skip)")
    p.add_argument("--second_judge_models", default="all",
                   help="model tags the second judge scores besides the ground truth ('all', or space/comma "
                        "separated, e.g. 'base'): pocketsphinx takes 1-3 s per utterance on 2 CPU cores")
    p.add_argument("--per", default="true", choices=["true", "false"],
                   help="phone error rate of the main judge's transcripts (espeak-ng phonemes)")
    p.add_argument("--results", default=None, help="results store (default <exp_dir>/results.json)")
    p.add_argument("--batch_size", type=int, default=16)
    add_job_args(p, "output folders")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return p


def phone_error_rate(per_utt_tsv: str) -> dict[str, float]:
    """PER (mean per utterance and corpus, percent) of the ``ref``/``hyp`` columns of a per_utt.tsv."""
    from ttsrl.score.wer import phone_error_rates
    from ttsrl.text.tokenizer import SPACE, PhonemeTokenizer

    refs, hyps = [], []
    with open(per_utt_tsv, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
            if row.get("status") == "ok":
                refs.append(row.get("ref", ""))
                hyps.append(row.get("hyp", ""))
    if not refs:
        return {}
    g2p = PhonemeTokenizer(with_stress=False, preserve_punctuation=False)

    def phones(texts: list[str]) -> list[list[str]]:
        return [[t for t in toks if t != SPACE] if text.strip() else [] for text, toks in
                zip(texts, g2p.texts2tokens([t if t.strip() else "a" for t in texts]), strict=True)]  # fmt: skip

    return phone_error_rates(phones(refs), phones(hyps))


def score_one(data_dir: str, out_dir: str, judge: str, judge_path: str | None, metrics: str, args,
              model_tag: str, test_set: str, wav_scp: str | None = None, judge_tag: str | None = None,
              per: bool = False) -> None:  # fmt: skip
    from ttsrl.score.results import update_results
    from ttsrl.score.scorer import ScoreConfig, load_test_set, run_scoring

    done = os.path.join(out_dir, ".done")
    if os.path.exists(done):
        logger.info("%s exists; skipping", done)
        return
    metric_names = tuple(m for m in metrics.replace(" ", ",").split(",") if m)
    config = ScoreConfig(
        metrics=metric_names, judge=judge, judge_path=judge_path, judge_tag=judge_tag,
        sim="resemblyzer" if "sim" in metric_names else "none", emo_judge=args.emo_judge,
        batch_size=args.batch_size, device=args.device,
    )  # fmt: skip
    logger.info("scoring %s/%s with %s (%s) -> %s", model_tag, test_set, judge, ",".join(metric_names), out_dir)
    run_scoring(load_test_set(data_dir=data_dir), out_dir, config, wav_scp=wav_scp, results=args.results,
                model_tag=model_tag, test_set_name=test_set)  # fmt: skip
    if per:
        rates = phone_error_rate(os.path.join(out_dir, "per_utt.tsv"))
        if rates:
            update_results(args.results, model_tag, test_set, {"per": rates["per"]})  # results.json has no per_corpus
            logger.info("%s/%s per = %.2f %% (corpus %.2f %%) [%s]", model_tag, test_set, rates["per"],
                        rates["per_corpus"], judge)  # fmt: skip
    with open(done, "w"):
        pass


def decoded_models(exp_dir: str, test_set: str) -> list[tuple[str, str]]:
    """``(model tag, wav.scp)`` of every ``<exp_dir>/<model>/decode/<set>/wav.scp``, sorted.

    A model dir that is a link (``speechalign`` -> ``speechalign_iter2``) names its target:
    the target's audio is scored once, under the link's tag.
    """
    found = {}
    for scp in sorted(glob.glob(os.path.join(exp_dir, "*", "decode", test_set, "wav.scp"))):
        found[os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(scp))))] = scp
    aliased = {os.path.realpath(os.path.join(exp_dir, m)) for m in found if os.path.islink(os.path.join(exp_dir, m))}
    return [(m, scp) for m, scp in found.items()
            if os.path.islink(os.path.join(exp_dir, m)) or os.path.realpath(os.path.join(exp_dir, m)) not in aliased]


def run(args: argparse.Namespace) -> None:
    from ttsrl.score.results import GROUND_TRUTH

    if args.num_threads > 0:
        import torch

        torch.set_num_threads(args.num_threads)
    args.results = args.results or os.path.join(args.exp_dir, "results.json")
    sets = [s for s in args.test_sets.replace(",", " ").split() if s]
    second = None if args.second_judge in ("", "none") else args.second_judge
    per = args.per == "true"
    if args.emo_judge:  # the ground truth's emo_acc is the emotion judge's own accuracy on the set
        args.metrics, args.gt_metrics = (m if "emo" in m.split(",") else f"{m},emo" for m in (args.metrics, args.gt_metrics))
    second_models = None if args.second_judge_models == "all" else set(args.second_judge_models.replace(",", " ").split())
    tasks = []  # score_one's arguments, each an output folder of its own
    for tset in sets:
        data_dir = os.path.join(args.data_root, tset)
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"{data_dir}: test set not found")
        gt = os.path.join(args.exp_dir, GROUND_TRUTH, tset)
        tasks.append(((data_dir, os.path.join(gt, "score"), args.judge, args.judge_path, args.gt_metrics, args,
                       GROUND_TRUTH, tset), {"per": per}))  # fmt: skip
        if second:
            tasks.append(((data_dir, os.path.join(gt, f"score_{second}"), second, None, "wer,cer", args,
                           GROUND_TRUTH, tset), {"judge_tag": second}))  # fmt: skip
        for model, scp in decoded_models(args.exp_dir, tset):
            decode_dir = os.path.dirname(scp)
            tasks.append(((data_dir, os.path.join(decode_dir, "score"), args.judge, args.judge_path, args.metrics,
                           args, model, tset), {"wav_scp": scp, "per": per}))  # fmt: skip
            if second and (second_models is None or model in second_models):
                tasks.append(((data_dir, os.path.join(decode_dir, f"score_{second}"), second, None, "wer,cer", args,
                               model, tset), {"wav_scp": scp, "judge_tag": second}))  # fmt: skip
    for pos, kw in job_share(tasks, args.job, args.num_jobs, ValueError):
        score_one(*pos, **kw)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.score.asr import JudgeUnavailable

    try:
        run(args)
    except (ValueError, OSError, JudgeUnavailable) as e:
        print(f"score_all: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
