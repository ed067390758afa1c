"""Tokenize a data directory: speech tokens of every utterance (and prompt), text token ids, CTC CER.

Writes to ``--out_dir`` (each file under a temporary name, then renamed)::

    speech.ark/.scp         int32 speech tokens (T',) per utterance (kaldiio)
    utt2num_tokens          <utt> <T'>
    text                    <utt> <text token ids>: the codec LM's text units (Kaldi text of ids)
    tokens.txt              the token list those ids index
    token_type              char, phn or bpe: the unit of text / tokens.txt (one line)
    bpe.model               the sentencepiece model of bpe units          (bpe only)
    ctc_text                <utt> <ids of <tokenizer_dir>/tokens.txt>: the transcript in the speech
                            tokenizer's CTC units, read by the reward model and the CTC rewards
                            (equal to text when the LM's units are those)
    prompt_speech.ark/.scp  tokens of each utterance's prompt audio   (when the set has prompt.scp)
    prompt_text             LM-unit ids of each prompt's transcript   (when the set has prompt_text)
    metrics.json            codebook usage of the set and, with --report_cer, ``ctc_cer``

The LM's text units are the tokenizer's CTC units unless ``--text_token_list`` gives another
list (stage 3 builds one for ``rl.sh --text_token_type phn|bpe``, see ``ttsrl.bin.tokenize_text
--units_dir``) with its ``--text_token_type`` (and ``--bpemodel``). ``--text_token_type`` alone
asks for the CTC units and checks that they are of that type. A character the phonemizer cannot
read fails, naming the utterance (``ttsrl.text.tokenizer.UnpronounceableError``).

Speech comes from ``--feats_scp`` (log-mels dumped by ttsrl.bin.compute_feats, checked
against the tokenizer's mel config) or, without it, from the audio of ``wav.scp``
(resampled to the tokenizer's rate). With ``--report_cer`` the tokens are transcribed
by the tokenizer's CTC head and scored against the normalized transcripts (greedy, percent
of character edits); ``--metrics_json`` merges ``ctc_cer_<set>`` (and ``ctc_cer`` for
``--primary_test_set``) into the tokenizer's ``metrics.json``. Symbols of a transcript
missing from the text token list are reported per utterance and mapped to ``<unk>``; letters
the units cannot spell at all (``你好`` for English characters), which normalization drops,
are reported per utterance too.

Usage:
    python -m ttsrl.bin.tokenize_speech --tokenizer_dir exp/tokenizer --data_dir data/test \\
        --feats_scp dump/feats/test/feats.scp --out_dir dump/tokens/test \\
        --report_cer true --metrics_json exp/tokenizer/metrics.json --primary_test_set test
    python -m ttsrl.bin.tokenize_speech --tokenizer_dir exp/tokenizer --data_dir data/gen --out_dir dump/tokens/gen
    python -m ttsrl.bin.tokenize_speech --tokenizer_dir exp/tokenizer --data_dir data/train \\
        --feats_scp dump/feats/train/feats.scp --out_dir dump/tokens/train \\
        --text_token_type phn --text_token_list dump/tokens/text_units/tokens.txt
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterable, Iterator

from ttsrl.utils.config import str2bool

logger = logging.getLogger("ttsrl.bin.tokenize_speech")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer_dir", required=True, help="trained tokenizer (model.pt, tokens.txt)")
    p.add_argument("--data_dir", required=True, help="Kaldi data directory")
    p.add_argument("--out_dir", required=True, help="e.g. dump/tokens/<set>")
    p.add_argument("--feats_scp", default=None, help="dumped log-mels of the set (default: computed from wav.scp)")
    p.add_argument("--set_name", default=None, help="name in metrics keys (default: the data dir's name)")
    p.add_argument("--text_token_list", default=None,
                   help="token list of the 'text' ids (default: the tokenizer's CTC units, <tokenizer_dir>/tokens.txt)")
    p.add_argument("--text_token_type", default=None, choices=["char", "phn", "bpe"],
                   help="type of --text_token_list (default char); without a list: the type the tokenizer's "
                        "CTC units must have")
    p.add_argument("--bpemodel", default=None, help="sentencepiece model (bpe)")
    p.add_argument("--report_cer", type=str2bool, default=True, help="CTC CER of the tokens against the text")
    p.add_argument("--metrics_json", default=None, help="merge ctc_cer_<set> into this file")
    p.add_argument("--primary_test_set", default="test", help="the set whose CER is also stored as ctc_cer")
    p.add_argument("--batch_frames", type=int, default=30000, help="padded mel frames per batch")
    p.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: GPU")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def iter_mels(model, data_dir, utts: Iterable[str], feats_scp: str | None, wavs: dict | None = None) -> Iterator:
    """``(utt, raw log-mel (T, n_mels) tensor)`` from feats.scp, from ``wavs`` ({utt: spec}) or wav.scp."""
    import torch

    from ttsrl.data.arrays import read_scp
    from ttsrl.data.audio import iter_data_dir_audio, load_audio
    from ttsrl.data.datadir import DataDirError

    sr = model.config.mel.sample_rate
    if feats_scp is not None:
        feats = read_scp(feats_scp)
        for utt in utts:
            if utt not in feats:
                raise DataDirError(f"{feats_scp}: no features for utterance '{utt}'")
            yield utt, torch.from_numpy(feats[utt].astype("float32"))
    elif wavs is not None:
        for utt in utts:
            wav, _ = load_audio(wavs[utt], sample_rate=sr)
            yield utt, model.wav_to_mel(wav)[0][0]
    else:
        for utt, wav, _ in iter_data_dir_audio(data_dir, sample_rate=sr, utts=utts):
            if wav.size == 0:
                raise DataDirError(f"{getattr(data_dir, 'path', data_dir)}: utterance '{utt}': empty audio")
            yield utt, model.wav_to_mel(wav)[0][0]


def tokenize(model, mels: Iterable, batch_frames: int, decode: bool) -> Iterator:
    """Batch ``(utt, mel)`` pairs; yield ``(utt, tokens int32 numpy, CTC hypothesis or None)`` in order."""
    from tqdm import tqdm

    from ttsrl.data.dataset import pad_arrays

    device = model.mvn.mean.device

    def flush(buf):
        mel, lens = pad_arrays([m for _, m in buf])
        toks, tlens = model.encode(mel.to(device), lens.to(device))
        hyps = model.ctc_decode(toks, tlens) if decode else [None] * len(buf)
        for (utt, _), t, n, h in zip(buf, toks.cpu().numpy(), tlens.tolist(), hyps, strict=True):
            yield utt, t[:n].astype("int32"), h

    buf: list = []
    longest = 0
    for utt, mel in tqdm(mels, desc="tokenize", unit="utt", mininterval=2.0, disable=None):
        if buf and max(longest, mel.shape[0]) * (len(buf) + 1) > batch_frames:
            yield from flush(buf)
            buf, longest = [], 0
        buf.append((utt, mel))
        longest = max(longest, mel.shape[0])
    if buf:
        yield from flush(buf)


def check_mel_config(model, feats_scp: str) -> None:
    from ttsrl.utils.config import load_yaml

    path = os.path.join(os.path.dirname(feats_scp), "mel_conf.yaml")
    if os.path.isfile(path):
        conf = load_yaml(path)
        mine = model.config.mel.to_dict()
        diff = {k: (v, mine.get(k)) for k, v in conf.items() if mine.get(k) != v}
        if diff:
            raise ValueError(f"{path}: features differ from the tokenizer's mel config: {diff} (file, tokenizer)")


def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from ttsrl.data.arrays import write_ark_scp
    from ttsrl.data.datadir import DataDir, write_kv
    from ttsrl.models.speech_tokenizer import (
        SpeechTokenizer,
        char_errors,
        codebook_stats,
        load_ctc_tokenizer,
    )
    from ttsrl.text.tokenizer import build_tokenizer, encode_texts, write_text_units
    from ttsrl.train.distributed import inference_device
    from ttsrl.utils.fileio import write_json, write_metrics

    model = SpeechTokenizer.from_pretrained(args.tokenizer_dir, device=inference_device(args.ngpu, args.num_threads))
    ctc_tok = load_ctc_tokenizer(args.tokenizer_dir)
    if ctc_tok.vocab_size != model.config.vocab_size:
        raise ValueError(f"{args.tokenizer_dir}/tokens.txt has {ctc_tok.vocab_size} tokens, the model {model.config.vocab_size}")
    if args.text_token_list is None:  # the CTC units of the tokenizer
        if args.text_token_type not in (None, ctc_tok.token_type):
            raise ValueError(f"--text_token_type {args.text_token_type} without --text_token_list, but the CTC units "
                             f"of {args.tokenizer_dir} are {ctc_tok.token_type}: give the list of "
                             f"{args.text_token_type} units (ttsrl.bin.tokenize_text --units_dir)")
        text_tok = ctc_tok
    else:
        text_tok = build_tokenizer(args.text_token_type or "char", args.text_token_list, bpemodel=args.bpemodel)
    if args.feats_scp:
        check_mel_config(model, args.feats_scp)

    d = DataDir.load(args.data_dir)
    name = args.set_name or os.path.basename(os.path.normpath(args.data_dir))
    out = args.out_dir
    os.makedirs(out, exist_ok=True)

    # text ids: the LM's units (text, prompt_text) and the CTC units (ctc_text); unknown symbols per utterance
    def write_ids(fname, ids):
        write_kv(os.path.join(out, fname), {u: " ".join(map(str, s)) for u, s in ids.items()})

    def encode(tok, fname, texts):
        source = f"{args.data_dir}/{'text' if fname == 'ctc_text' else fname}"
        try:
            ids, unknown = encode_texts(tok, texts)
        except ValueError as e:  # an empty or unpronounceable text, named by its utterance
            raise ValueError(f"{source}: {e}") from None
        for utt, symbols in unknown.items():
            logger.warning("%s: %s: %s not in the %s token list (mapped to <unk>)", source, utt, " ".join(symbols),
                           tok.token_type)
        if fname != "ctc_text":  # letters normalization drops (outside what the units spell), per utterance
            dropped = {u: "".join(c) for u, t in texts.items() if (c := tok.dropped_chars(t))}
            for utt in list(dropped)[:20]:
                logger.warning("%s: %s: characters %r cannot be spelled in %s units; dropped from its tokens",
                               source, utt, dropped[utt], tok.token_type)
            if len(dropped) > 20:
                logger.warning("%s: %d more utterances with dropped characters", source, len(dropped) - 20)
        write_ids(fname, ids)
        return ids

    refs: dict = {}  # the transcripts in the CTC units: ctc_text, and the references of the CER
    if d.text:
        ids = encode(text_tok, "text", d.text)
        if text_tok is ctc_tok:
            refs = ids
            write_ids("ctc_text", ids)
        else:
            refs = encode(ctc_tok, "ctc_text", d.text)
    if d.extra.get("prompt_text"):
        encode(text_tok, "prompt_text", d.extra["prompt_text"])
    write_text_units(out, text_tok)

    # speech tokens
    report_cer = args.report_cer and bool(d.text)
    counts = np.zeros(model.codebook_size, dtype=np.int64)
    errors = chars = 0
    num_tokens: dict[str, str] = {}

    def items():
        nonlocal errors, chars
        for utt, toks, hyp in tokenize(model, iter_mels(model, d, d.utts, args.feats_scp), args.batch_frames,
                                       decode=report_cer):
            counts[:] += np.bincount(toks, minlength=model.codebook_size)
            num_tokens[utt] = str(len(toks))
            if hyp is not None:
                e, c = char_errors([refs[utt]], [hyp], ctc_tok.decode)
                errors, chars = errors + e, chars + c
            yield utt, toks

    n = write_ark_scp(os.path.join(out, "speech.ark"), os.path.join(out, "speech.scp"), items())
    write_kv(os.path.join(out, "utt2num_tokens"), num_tokens)
    prompts = d.extra.get("prompt.scp", {})
    if prompts:
        prompt_utts = [u for u in d.utts if u in prompts]
        mels = iter_mels(model, d, prompt_utts, None, wavs=prompts)
        write_ark_scp(os.path.join(out, "prompt_speech.ark"), os.path.join(out, "prompt_speech.scp"),
                      ((u, t) for u, t, _ in tokenize(model, mels, args.batch_frames, decode=False)))

    metrics = {f"{k}_{name}": round(v, 4) for k, v in codebook_stats(counts).items()}
    if report_cer:
        metrics[f"ctc_cer_{name}"] = round(100.0 * errors / max(chars, 1), 3)
        if name == args.primary_test_set:
            metrics["ctc_cer"] = metrics[f"ctc_cer_{name}"]
    write_json(os.path.join(out, "metrics.json"), metrics)
    if args.metrics_json:
        write_metrics(args.metrics_json, metrics)
    logger.info("%s: %d utterances, %d tokens -> %s; %s", args.data_dir, n, int(counts.sum()), out, json.dumps(metrics))
    return metrics


def main(argv: list[str] | None = None) -> dict:
    from ttsrl.utils.cli import exit_on_bad_input, setup_logging

    args = get_parser().parse_args(argv)
    setup_logging("INFO")
    return exit_on_bad_input(lambda: run(args))


if __name__ == "__main__":
    main()

