#!/usr/bin/env python3
"""Synthesize a test set: text (+ zero-shot prompt) -> codec LM -> flow matching -> vocoder (stage 8).

Usage:
  python -m ttsrl.bin.synthesize --data_dir data/test --tokenizer_dir exp/tokenizer \\
      --lm exp/base/lm/model.pt --flow exp/base/flow/model.pt --out_dir exp/base/decode/test
  python -m ttsrl.bin.synthesize --seedtts_list meta.lst ...            # Seed-TTS-Eval list
  python -m ttsrl.bin.synthesize --data_dir data/test --golden_tokens dump/tokens/test/speech.scp \\
      --tokenizer_dir exp/tokenizer --flow exp/base/flow/model.pt --out_dir exp/resynth/decode/test
Writes <out_dir>/wav/<utt>.wav, <out_dir>/wav.scp, <out_dir>/errors (utterances that failed and
why) and <out_dir>/rtf. Utterances already written are skipped, so a rerun resumes. With
--num_jobs N, job K synthesizes every N-th utterance from the K-th into the same wav/ and writes
wav.K.scp, errors.K and rtf.K (cat them to merge; rl.sh --decode_nj N does). A data dir
gives its prompts in prompt.scp and prompt_text (mini_en's test sets have them); with --lm_prompt
false they condition the flow model only, with --use_prompts false nothing reads them.

An utterance that fails is listed in errors with its reason and does not stop the others; a text
with letters the LM's units cannot spell is synthesized without them (a warning names them) or,
with --strict_text true (rl.sh's stage 8), fails. The exit status is 1 when utterances were asked
for and none has audio (every one failed): stage 8 then stops instead of marking the set done.
"""
import argparse
import logging
import os

from ttsrl.sample.sampler import SamplingConfig
from ttsrl.sample.synthesize import FlowOptions
from ttsrl.utils.cli import add_job_args, exit_on_bad_input, setup_logging
from ttsrl.utils.config import (
    add_config_args,
    add_dataclass_args,
    dataclass_from_args,
    parse_with_config,
    str2bool,
)
from ttsrl.utils.jobs import job_share, job_suffix


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data_dir", help="Kaldi data dir: text, optional prompt.scp / prompt_text")
    src.add_argument("--seedtts_list", help="utt|prompt_text|prompt_wav|infer_text[|gt_wav] list")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--tokenizer_dir", required=True, help="speech tokenizer dir (model.pt, tokens.txt)")
    p.add_argument("--lm", default=None, help="codec LM model.pt (not needed with --golden_tokens)")
    p.add_argument("--flow", required=True, help="flow-matching model.pt")
    p.add_argument("--vocoder", default="griffin_lim", choices=("griffin_lim", "vocos"))
    p.add_argument("--vocoder_path", default=None, help="model.pt of a trained vocos vocoder")
    p.add_argument("--griffin_lim_iters", type=int, default=32,
                   help="Griffin-Lim iterations (fewer: faster, a little more phasey)")
    p.add_argument("--golden_tokens", default=None, help="speech.scp of tokens to resynthesize (skips the LM)")
    p.add_argument("--use_prompts", type=str2bool, default=True,
                   help="false: no prompt at all (neither the LM nor the flow model reads one)")
    p.add_argument("--lm_prompt", type=str2bool, default=True,
                   help="the LM reads the prompt (its text and speech tokens); false: the prompt conditions "
                        "the flow model only, the LM reads the text alone")
    p.add_argument("--tag", default=None, choices=["good", "bad"],
                   help="control tag of a Chain-of-Hindsight LM (num_tags > 0; default for such an LM: good)")
    p.add_argument("--strict_text", type=str2bool, default=False,
                   help="a text with letters the LM's text units cannot spell (e.g. Chinese characters for an "
                        "English model) fails; false: synthesized without them, with a warning naming them")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--ngpu", type=int, default=None, help="0 = CPU; default: CUDA when available")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    add_job_args(p)
    add_dataclass_args(p, SamplingConfig, group="sampling")
    add_dataclass_args(p, FlowOptions, group="flow", prefix="flow_")
    return p


def main(argv=None):
    setup_logging("INFO")
    args = parse_with_config(get_parser(), argv)
    return exit_on_bad_input(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from ttsrl.sample.synthesize import TTSPipeline, read_requests, synthesize_requests
    from ttsrl.train.distributed import inference_device

    device = inference_device(args.ngpu, args.num_threads)
    requests = job_share(read_requests(args.data_dir, args.seedtts_list, args.golden_tokens, args.use_prompts),
                         args.job, args.num_jobs)
    tts = TTSPipeline.from_dirs(None if args.golden_tokens else args.lm, args.flow, args.tokenizer_dir,
                                args.vocoder, args.vocoder_path, device, tag=args.tag,
                                griffin_lim_iters=args.griffin_lim_iters, lm_prompt=args.lm_prompt,
                                strict_text=args.strict_text)
    report = synthesize_requests(tts, requests, args.out_dir, dataclass_from_args(SamplingConfig, args),
                                 dataclass_from_args(FlowOptions, args, prefix="flow_"), args.batch_size,
                                 job_suffix(args.job, args.num_jobs))
    errors = os.path.join(args.out_dir, f"errors{job_suffix(args.job, args.num_jobs)}")
    if requests and not report.written and not report.skipped:
        logging.error("none of the %d utterances was synthesized; the reasons are in %s", len(requests), errors)
        raise SystemExit(1)
    if report.errors:
        logging.warning("%d utterances failed; see %s", len(report.errors), errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
