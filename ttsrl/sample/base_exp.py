"""A base TTS folder: what rl.sh stages 2 and 4 write, or a base trained elsewhere (``rl.sh --base_exp``).

Stages 5-9 sample, align, decode and score from it and never write into it::

    <base_exp>/tokenizer/model.pt    speech tokenizer: weights (its global mel MVN included) and the resolved
                                     config with ``model_conf`` (ttsrl.models.speech_tokenizer; its ``mel``
                                     says which log-mel it reads)
    <base_exp>/tokenizer/tokens.txt  the CTC head's text units (one per line, <blank> first, <sos/eos> last)
                                     [+ bpe.model for BPE units]
    <base_exp>/lm/model.pt           codec LM (ttsrl.models.codec_lm): weights + ``model_conf``
    <base_exp>/lm/tokens.txt         its text units [+ token_type: char, phn or bpe; + bpe.model]; without
                                     them the LM reads the tokenizer's CTC units (char)
    <base_exp>/flow/model.pt         flow-matching model (ttsrl.models.flow): weights (mel stats included)
                                     + ``model_conf``
    <base_exp>/vocoder/model.pt      Vocos vocoder (ttsrl.models.vocoder), only with ``--vocoder vocos``

A ``model.pt`` is ``{"model": state_dict, "config": {"model_conf": {...}, ...}}`` as
:func:`ttsrl.utils.checkpoint.load_model` reads it (``torch.save``; the Trainer writes it).
:func:`check_base_exp` loads every model and checks that they fit together before any stage runs:
one codebook for the tokenizer, the LM and the flow model, the LM's text vocabulary and its units,
one mel configuration, and the sample rate of the recipe's data.

Usage::

    from ttsrl.sample.base_exp import check_base_exp

    info = check_base_exp("/models/base", fs=16000, vocoder="griffin_lim")
    info.token_type, info.mel_args      # 'phn', ['--n_fft', '2048', ...] (what stage 2 gives compute_feats)
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

REQUIRED = ("tokenizer/model.pt", "tokenizer/tokens.txt", "lm/model.pt", "flow/model.pt")
VOCOS = "vocoder/model.pt"


class BaseExpError(ValueError):
    """The base folder lacks a file or its models do not fit together; the message says which and why."""


@dataclass
class BaseInfo:
    token_type: str  # the LM's text units: char, phn or bpe
    codebook_size: int
    mel_args: list[str] = field(default_factory=list)  # compute_feats options for the tokenizer's mel config


def check_base_exp(path: str | os.PathLike, fs: int, vocoder: str = "griffin_lim") -> BaseInfo:
    """Load the models of the base folder ``path`` and check that they fit together and read ``fs`` Hz
    audio; raises :class:`BaseExpError` naming the file (a file that cannot be read raises the
    loader's error, which names it)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise BaseExpError(f"--base_exp {path}: not a directory")
    needed = [*REQUIRED, *([VOCOS] if vocoder == "vocos" else [])]
    missing = [f for f in needed if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise BaseExpError(f"--base_exp {path}: missing {', '.join(missing)} (the layout is in README.md, "
                           "'A base model trained elsewhere')")
    tok_dir, lm_dir = os.path.join(path, "tokenizer"), os.path.join(path, "lm")

    from ttsrl.feats.mel import MelConfig  # torch is imported once the files are known to be there
    from ttsrl.models.codec_lm import load_codec_lm
    from ttsrl.models.flow import load_flow
    from ttsrl.models.speech_tokenizer import SpeechTokenizer, load_ctc_tokenizer
    from ttsrl.models.vocoder import load_vocos
    from ttsrl.text.tokenizer import load_text_tokenizer, read_token_type

    tok = SpeechTokenizer.from_pretrained(tok_dir)
    ctc = load_ctc_tokenizer(tok_dir)
    if ctc.vocab_size != tok.config.vocab_size:
        raise BaseExpError(f"{tok_dir}/tokens.txt has {ctc.vocab_size} units, the tokenizer's CTC head "
                           f"{tok.config.vocab_size}")
    mel = tok.config.mel
    if mel.sample_rate != fs:
        raise BaseExpError(f"{tok_dir}/model.pt reads {mel.sample_rate} Hz audio, the recipe's data is at --fs {fs}: "
                           f"give --fs {mel.sample_rate} (and data dirs at that rate)")
    codebook = tok.codebook_size

    lm = load_codec_lm(lm_dir)
    if lm.config.speech_vocab_size != codebook:
        raise BaseExpError(f"{lm_dir}/model.pt: speech_vocab_size {lm.config.speech_vocab_size}, but the tokenizer's "
                           f"codebook has {codebook} tokens")
    if os.path.isfile(os.path.join(lm_dir, "tokens.txt")):
        units, where = load_text_tokenizer(lm_dir), f"{lm_dir}/tokens.txt"
        token_type = read_token_type(lm_dir)
    else:  # an LM saved without its units reads the tokenizer's CTC units
        units, where, token_type = ctc, f"{tok_dir}/tokens.txt (the LM has no tokens.txt)", ctc.token_type
    if units.vocab_size != lm.config.text_vocab_size:
        raise BaseExpError(f"{lm_dir}/model.pt: text_vocab_size {lm.config.text_vocab_size}, but its text units "
                           f"{where} have {units.vocab_size}")

    flow = load_flow(os.path.join(path, "flow"))
    fc = flow.config
    if fc.vocab_size != codebook or fc.n_mels != mel.n_mels or fc.token_frames != tok.config.subsample:
        raise BaseExpError(f"{path}/flow/model.pt: vocab_size {fc.vocab_size}, n_mels {fc.n_mels}, token_frames "
                           f"{fc.token_frames}; the tokenizer: codebook {codebook}, n_mels {mel.n_mels}, "
                           f"{tok.config.subsample} mel frames per token")
    if vocoder == "vocos":
        voc = load_vocos(os.path.join(path, "vocoder")).config.mel_config()
        if voc != mel:
            raise BaseExpError(f"{path}/vocoder/model.pt: its mel config {voc} is not the tokenizer's {mel}")

    mel_args = []  # stage 2's features must be the tokenizer's: its mel fields that differ from the defaults
    for f in dataclasses.fields(MelConfig):
        value, default = getattr(mel, f.name), f.default
        if f.name == "sample_rate" or value == default:
            continue
        if value is None:
            raise BaseExpError(f"{tok_dir}/model.pt: mel {f.name} is None, which compute_feats cannot be given")
        mel_args += [f"--{f.name}", str(value)]
    return BaseInfo(token_type=token_type, codebook_size=codebook, mel_args=mel_args)
