#!/usr/bin/env python3
"""Score synthesized audio of a test set the Seed-TTS-Eval way: WER/CER, SIM, F0 var, DNSMOS.

Writes <out_dir>/per_utt.tsv, result.json (and missing.txt) and, with --results, merges the
metrics into exp/results.json. Without --wav_dir/--wav_scp the test set's own audio is scored
(the ground_truth row).

Usage:
    ttsrl-score --data_dir data/test --wav_dir exp/base/decode/test/wavs \
        --out_dir exp/base/decode/test/score --results exp/results.json --model_tag base --test_set test
    ttsrl-score --data_dir data/test --out_dir exp/ground_truth/test/score --model_tag ground_truth
    ttsrl-score --seedtts_list seedtts_testset/en/meta.lst --wav_dir out/wavs --out_dir out/score \
        --judge whisper --judge_path /models/whisper-large-v3 --metrics wer,sim
"""

import argparse
import sys

from ttsrl.utils.cli import LOG_LEVELS, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data_dir", help="data dir with text (+ prompt.scp, wav.scp)")
    src.add_argument(
        "--seedtts_list", help="Seed-TTS-Eval list utt|prompt_text|prompt_wav|infer_text[|gt_wav]"
    )
    hyp = p.add_mutually_exclusive_group()
    hyp.add_argument(
        "--wav_dir", help="folder of <utt>.wav to score (omit both: score the test set's own audio)"
    )
    hyp.add_argument("--wav_scp", help="wav.scp of the audio to score")
    p.add_argument("--out_dir", required=True, help="where per_utt.tsv and result.json go")
    p.add_argument(
        "--metrics", default="wer,cer,sim,f0v,dnsmos", help="comma-separated subset of the default"
    )
    p.add_argument("--judge", default="pocketsphinx", help="ASR judge: pocketsphinx | whisper")
    p.add_argument("--judge_path", help="local checkpoint of the judge (whisper); never downloaded")
    p.add_argument("--judge_tag", help="store WER/CER in results.json as wer@<tag> (several judges per set)")
    p.add_argument("--sim", default="resemblyzer", choices=["resemblyzer", "ecapa", "none"])
    p.add_argument("--sim_path", help="local checkpoint of the ecapa speaker model")
    p.add_argument("--emo_judge", help="emotion judge (model.npz of ttsrl.bin.train_emotion_judge) for metric emo")
    p.add_argument("--lang", default="en", choices=["en", "zh"], help="text normalization (Seed-TTS-Eval)")
    p.add_argument("--strict", action="store_true", help="a missing or unreadable wav is an error")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--results", help="exp/results.json to merge into (file-locked)")
    p.add_argument("--model_tag", help="row of results.json (ground_truth: the test set's own audio)")
    p.add_argument("--test_set", help="test set name in results.json (default: data dir / list name)")
    p.add_argument("--log_level", default="INFO", choices=LOG_LEVELS)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    from ttsrl.score.asr import JudgeUnavailable
    from ttsrl.score.scorer import ScoreConfig, load_test_set, run_scoring

    try:
        config = ScoreConfig(
            metrics=tuple(m for m in args.metrics.split(",") if m), judge=args.judge, judge_path=args.judge_path,
            judge_tag=args.judge_tag, sim=args.sim, sim_path=args.sim_path, emo_judge=args.emo_judge,
            lang=args.lang, strict=args.strict,
            batch_size=args.batch_size, device=args.device,
        )  # fmt: skip
        test_set = load_test_set(data_dir=args.data_dir, seedtts_list=args.seedtts_list)
        run_scoring(test_set, args.out_dir, config, wav_dir=args.wav_dir, wav_scp=args.wav_scp,
                    results=args.results, model_tag=args.model_tag, test_set_name=args.test_set)  # fmt: skip
    except (
        ValueError,
        OSError,
        JudgeUnavailable,
    ) as e:  # bad input (DataDirError, AudioError, ScoreError ...)
        print(f"ttsrl-score: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
