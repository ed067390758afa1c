"""Tokenize a Kaldi ``text`` file into token ids (``<utt> <id> <id> ...``).

Without ``--token_list`` the list is built from the input (do that on the training set)
and written with ``--write_token_list``; other sets reuse it. For ``bpe``,
``--bpe_vocab_size N`` first trains ``<bpemodel>.model`` on the input.

``--units_dir DIR`` writes the units as a folder (``tokens.txt``, ``token_type`` and, for
bpe, ``bpe.model``, trained there with ``--bpe_vocab_size``; see
``ttsrl.text.tokenizer.load_text_tokenizer``); ``--output`` is then optional. Stage 3 of
``rl.sh --text_token_type phn|bpe`` builds the LM's text units this way from the training
text, and ``ttsrl.bin.tokenize_speech --text_token_list`` uses them. A character the
phonemizer cannot read fails, naming the utterance.

Usage:
    python -m ttsrl.bin.tokenize_text --token_type char --input data/train/text \\
        --output dump/tokens/train/text_tokens --write_token_list data/token_list/char/tokens.txt
    python -m ttsrl.bin.tokenize_text --token_type char --input data/dev/text \\
        --output dump/tokens/dev/text_tokens --token_list data/token_list/char/tokens.txt
    python -m ttsrl.bin.tokenize_text --token_type bpe --bpe_vocab_size 500 --bpemodel data/token_list/bpe/bpe \\
        --input data/train/text --output dump/tokens/train/text_tokens --write_token_list data/token_list/bpe/tokens.txt
    python -m ttsrl.bin.tokenize_text --token_type phn --input data/train/text --units_dir dump/tokens/text_units
"""

from __future__ import annotations

import argparse
import logging
import os

from ttsrl.utils.cli import exit_on_bad_input, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--token_type", required=True, choices=["char", "phn", "bpe"])
    p.add_argument("--input", required=True, help="Kaldi text file: <utt> <transcript>")
    p.add_argument("--output", default=None, help="output: <utt> <token ids> (required without --units_dir)")
    p.add_argument("--token_list", default=None, help="existing token list (default: built from --input)")
    p.add_argument("--write_token_list", default=None, help="write the token list used here to this file")
    p.add_argument("--units_dir", default=None,
                   help="write the units here: tokens.txt, token_type and (bpe) bpe.model")
    p.add_argument("--bpemodel", default=None,
                   help="sentencepiece model prefix (bpe; default with --units_dir: <units_dir>/bpe)")
    p.add_argument("--bpe_vocab_size", type=int, default=None, help="train --bpemodel on --input first (bpe)")
    p.add_argument(
        "--cleaner", default="en", choices=["en", "none"], help="text normalization before splitting"
    )
    p.add_argument("--g2p_language", default="en-us", help="espeak-ng language (phn)")
    return p


def run(args: argparse.Namespace) -> None:
    from ttsrl.data.datadir import read_kv, write_kv
    from ttsrl.text import tokenizer as T

    cleaner = None if args.cleaner == "none" else args.cleaner
    texts = read_kv(args.input)
    if args.bpe_vocab_size is not None:
        T.train_bpe(texts.values(), args.bpemodel, args.bpe_vocab_size, cleaner=cleaner)
    tokens = args.token_list or T.build_token_list(
        args.token_type,
        texts,  # {utt: text}: an error names the utterance
        bpemodel=args.bpemodel,
        cleaner=cleaner,
        g2p_language=args.g2p_language,
    )
    tok = T.build_tokenizer(
        args.token_type, tokens, bpemodel=args.bpemodel, cleaner=cleaner, g2p_language=args.g2p_language
    )
    if args.write_token_list:
        T.write_token_list(args.write_token_list, tok.tokens)
    if args.units_dir:
        T.write_text_units(args.units_dir, tok)
        logging.info("%s: %d %s units from %s", args.units_dir, tok.vocab_size, args.token_type, args.input)
    if not args.output:
        return
    ids, unknown = T.encode_texts(tok, texts)
    for utt, symbols in unknown.items():
        logging.warning("%s: %s not in the token list (mapped to <unk>)", utt, " ".join(symbols))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_kv(args.output, {utt: " ".join(map(str, seq)) for utt, seq in ids.items()})
    logging.info(
        "%s: %d utterances, vocabulary %d, %d with unknown symbols",
        args.output,
        len(ids),
        tok.vocab_size,
        len(unknown),
    )


def main(argv: list[str] | None = None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    is_bpe = args.token_type == "bpe"
    if is_bpe and args.bpemodel is None and args.units_dir:
        args.bpemodel = os.path.join(args.units_dir, "bpe")
    if is_bpe != (args.bpemodel is not None) or (not is_bpe and args.bpe_vocab_size is not None):
        parser.error("--bpemodel (and --bpe_vocab_size) go with --token_type bpe, and only with it")
    if not args.output and not args.units_dir:
        parser.error("give --output, --units_dir or both")
    setup_logging("INFO")
    exit_on_bad_input(lambda: run(args))


if __name__ == "__main__":
    main()
