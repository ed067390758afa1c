#!/usr/bin/env python3
"""Sample N speech-token candidates per (prompt, text) from a codec LM (stage 5).

Usage: python -m ttsrl.bin.sample_lm --lm exp/base/lm/model.pt --token_dir dump/tokens/test \\
           --out_dir exp/base/samples/test --num_candidates 4 [--top_k 50] [--job 1 --num_jobs 4] [--tag good]
Writes (with --num_jobs, per job K: tokens.K.ark/.scp, logprobs.K, ...; cat them to merge):
  tokens.scp     <utt>-c<k> -> int32 speech tokens (kaldiio)
  logprobs       <utt>-c<k> <summed log-prob of the sampled tokens under the model>
  finished       <utt>-c<k> <1 if the model chose <eos>, 0 if cut at the length bound>
The LM reads the set's zero-shot prompts (prompt_text, prompt_speech.scp) when the token dir has them,
unless --lm_prompt false.
"""
import argparse

from ttsrl.sample.sampler import SamplingConfig
from ttsrl.utils.cli import add_job_args, exit_on_bad_input, setup_logging
from ttsrl.utils.config import (
    add_config_args,
    add_dataclass_args,
    dataclass_from_args,
    parse_with_config,
    str2bool,
)


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--lm", required=True, help="model.pt of a trained codec LM")
    p.add_argument("--token_dir", required=True, help="dump/tokens/<set> (text, speech.scp, prompts)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--batch_size", type=int, default=8, help="(prompt, text) rows per batch (x num_candidates)")
    p.add_argument("--lm_prompt", type=str2bool, default=True,
                   help="the LM reads the set's zero-shot prompts (false: the text alone)")
    p.add_argument("--tag", default=None, choices=["good", "bad"],
                   help="control tag of a Chain-of-Hindsight LM (num_tags > 0; default for such an LM: good)")
    add_job_args(p)
    p.add_argument("--ngpu", type=int, default=None, help="0 = CPU; default: CUDA when available")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    add_dataclass_args(p, SamplingConfig, group="sampling")
    return p


def main(argv=None):
    setup_logging("INFO")
    args = parse_with_config(get_parser(), argv)
    from ttsrl.models.codec_lm import load_codec_lm
    from ttsrl.sample.generate import generate_candidates
    from ttsrl.train.distributed import inference_device

    def run():
        model = load_codec_lm(args.lm, inference_device(args.ngpu, args.num_threads))
        return generate_candidates(model, args.token_dir, args.out_dir, dataclass_from_args(SamplingConfig, args),
                                   lm_prompt=args.lm_prompt, tag=args.tag, batch_size=args.batch_size,
                                   job=args.job, num_jobs=args.num_jobs)

    return exit_on_bad_input(run)  # an unreadable --lm, a bad token dir: one line naming it, exit 1


if __name__ == "__main__":
    main()
