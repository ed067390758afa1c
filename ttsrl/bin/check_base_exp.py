#!/usr/bin/env python3
"""Check a base TTS folder before stages 5-9 use it (rl.sh --base_exp, at option parsing time).

Usage: python -m ttsrl.bin.check_base_exp --base_exp /models/base [--fs 16000] [--vocoder griffin_lim|vocos]

Loads tokenizer/, lm/, flow/ (and vocoder/ with --vocoder vocos) and checks that they fit together
and read --fs Hz audio (see ttsrl.sample.base_exp for the layout and what each model.pt holds).
Prints two lines for rl.sh:
  token_type <char|phn|bpe>      the LM's text units (stage 3 tokenizes the texts with them)
  mel_args <options>             compute_feats options giving the tokenizer's mel config (stage 2)
A missing or unreadable file, or models that do not fit, is one ERROR line naming it, and exit 1.
"""
import argparse

from ttsrl.utils.cli import exit_on_bad_input, setup_logging


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base_exp", required=True, help="folder with tokenizer/, lm/, flow/ [, vocoder/]")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of the recipe's data dirs")
    p.add_argument("--vocoder", default="griffin_lim", choices=("griffin_lim", "vocos"),
                   help="vocos: vocoder/model.pt is needed too")
    return p


def main(argv=None) -> int:
    setup_logging("WARNING")
    args = get_parser().parse_args(argv)
    from ttsrl.sample.base_exp import check_base_exp

    info = exit_on_bad_input(lambda: check_base_exp(args.base_exp, args.fs, args.vocoder))
    print(f"token_type {info.token_type}")
    print(f"mel_args {' '.join(info.mel_args)}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
