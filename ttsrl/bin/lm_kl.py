#!/usr/bin/env python3
"""Token-average KL(aligned LM || reference LM) on a test set (the ``kl`` column of the results).

Both LMs read the same sequences: the set's ground-truth speech tokens after its zero-shot
prompt (teacher forcing), so the number is deterministic and the same for every model. At
every predicted speech position (prompt, text and padding excluded) the KL of the full
next-token distributions is taken; the mean over all positions of the set is reported.
A Chain-of-Hindsight LM reads with its "good" tag. Merged into ``--results`` as
``results[model_tag][test_set]["kl"]`` when given, with ``train_min``: the alignment training
time, the sum of ``train_seconds`` of the ``--train_metrics`` files (every iteration of an
iterative method), in minutes.

Usage:
    python -m ttsrl.bin.lm_kl --lm exp/dpo/lm/model.pt --ref_lm exp/base/lm/model.pt \\
        --token_dir dump/tokens/test --results exp/results.json --model_tag dpo --test_set test \\
        --train_metrics exp/dpo/lm/metrics.json
"""
import argparse
import json
import logging
import os


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", required=True, help="model.pt of the aligned LM")
    p.add_argument("--ref_lm", required=True, help="model.pt of the reference (base) LM")
    p.add_argument("--token_dir", required=True, help="dump/tokens/<set>")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--no_prompt", action="store_true", help="ignore the set's prompts")
    p.add_argument("--results", default=None, help="exp/results.json to merge the value into")
    p.add_argument("--model_tag", default=None, help="model tag in --results")
    p.add_argument("--test_set", default=None, help="test set name in --results (default: the token dir's name)")
    p.add_argument("--train_metrics", nargs="*", default=[],
                   help="metrics.json files of the model's alignment training (train_seconds summed into train_min)")
    p.add_argument("--num_threads", type=int, default=0)
    return p


def train_minutes(paths: list[str]) -> float:
    """Sum of ``train_seconds`` over metrics.json files, in minutes; a missing file or key raises, naming it."""
    total = 0.0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
        if "train_seconds" not in metrics:
            raise SystemExit(f"{path}: no train_seconds")
        total += float(metrics["train_seconds"])
    return total / 60.0


def lm_kl(lm, ref, token_dir: str, batch_size: int = 16, with_prompt: bool = True) -> dict:
    import torch

    from ttsrl.data.token_dataset import TokenDataset, has_prompts, pad_1d
    from ttsrl.losses.diffro import token_kl
    from ttsrl.sample.sampler import tag_ids

    with_prompt = with_prompt and has_prompts(token_dir)
    ds = TokenDataset(token_dir, with_prompt=with_prompt)
    total = n = 0.0
    with torch.inference_mode():
        for b in range(0, len(ds), batch_size):
            items = [ds[i] for i in range(b, min(b + batch_size, len(ds)))]
            if with_prompt:
                text, text_lens = pad_1d([torch.cat([it["prompt_text"], it["text"]]) for it in items])
                speech, speech_lens = pad_1d([torch.cat([it["prompt_speech"], it["speech"]]) for it in items])
                prompt_lens = torch.tensor([len(it["prompt_speech"]) for it in items])
            else:
                text, text_lens = pad_1d([it["text"] for it in items])
                speech, speech_lens = pad_1d([it["speech"] for it in items])
                prompt_lens = None
            outs = [m(text, text_lens, speech, speech_lens, prompt_lens, tags=tag_ids(m, None, len(items)))
                    for m in (lm, ref)]
            kl = token_kl(outs[0].logits, outs[1].logits)  # (B, Ts + 1)
            total += float((kl * outs[0].mask).sum())
            n += float(outs[0].mask.sum())
    return {"kl": total / max(n, 1.0), "kl_tokens": int(n), "n_utts": len(ds)}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    import torch

    from ttsrl.score.results import update_results
    from ttsrl.tasks.lm import load_codec_lm

    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    if args.results and not args.model_tag:
        raise SystemExit("lm_kl: --results needs --model_tag")
    out = lm_kl(load_codec_lm(args.lm), load_codec_lm(args.ref_lm), args.token_dir, args.batch_size,
                not args.no_prompt)
    if args.train_metrics:
        out["train_min"] = train_minutes(args.train_metrics)
    if args.results:
        test_set = args.test_set or os.path.basename(os.path.normpath(args.token_dir))
        update_results(args.results, args.model_tag, test_set,
                       {k: round(out[k], 5) for k in ("kl", "train_min") if k in out})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
