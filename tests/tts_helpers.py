"""Tiny random-weight TTS models (tokenizer, codec LM, flow) and a prompted toy data dir, shared by tests."""
import dataclasses
import os

import torch

from ttsrl.data.datadir import DataDir, write_kv
from ttsrl.data.toy import make_toy_data_dir
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.models.flow import FlowConfig, FlowMatching
from ttsrl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig
from ttsrl.text.tokenizer import write_token_list
from ttsrl.utils.config import to_plain

LETTERS = list("abcdefghijklmnopqrstuvwxy")  # no "z": a text with z has an unknown symbol


def save(model, conf, path, **extra):
    torch.save({"model": model.state_dict(), "config": {"model_conf": to_plain(dataclasses.asdict(conf)), **extra}},
               path)


def build_tiny_tts_models(root):
    """``root/tokenizer`` (model.pt, tokens.txt), ``root/lm.pt`` and ``root/flow.pt``, random weights (seed 0)."""
    torch.manual_seed(0)
    tok_dir = root / "tokenizer"
    tok_dir.mkdir()
    tokens = ["<blank>", "<unk>", "<space>", *LETTERS, "<sos/eos>"]
    write_token_list(tok_dir / "tokens.txt", tokens)
    tcfg = SpeechTokenizerConfig(vocab_size=len(tokens), d_model=16, n_heads=2, d_ff=32, n_layers=1, conv_kernel=3,
                                 fsq_levels=(4, 4), ctc_layers=1, recon_layers=1, dropout=0.0)
    save(SpeechTokenizer(tcfg), tcfg, tok_dir / "model.pt", token_type="char")
    lcfg = CodecLMConfig(text_vocab_size=len(tokens), speech_vocab_size=16, d_model=16, n_layers=1, n_heads=2,
                         d_ff=32, dropout=0.0, max_len=512)
    save(CodecLM(lcfg), lcfg, root / "lm.pt")
    fcfg = FlowConfig(vocab_size=16, d_model=16, n_heads=2, encoder_layers=1, estimator_layers=1, d_ff=32,
                      dropout=0.0)
    save(FlowMatching(fcfg), fcfg, root / "flow.pt")
    return root


def make_prompted_set(tmp_path):
    """A toy data dir of 4 utterances with prompt.scp and prompt_text; utterance 2's text has an unknown "z"."""
    d = make_toy_data_dir(tmp_path / "data", num_spk=2, utts_per_spk=2, duration=0.3)
    dd = DataDir.load(d)
    utts = dd.utts
    write_kv(os.path.join(d, "prompt.scp"), {u: dd.wav_scp[utts[(i + 1) % len(utts)]] for i, u in enumerate(utts)})
    write_kv(os.path.join(d, "prompt_text"), {u: "hello" for u in utts})
    write_kv(os.path.join(d, "text"), {**dd.text, utts[1]: "a buzz"})  # z is unknown
    return d, utts
