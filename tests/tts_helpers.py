"""Tiny random-weight TTS models (tokenizer, codec LM, flow) and a prompted toy data dir, shared by tests."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

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


SAVING_CHILD = """
import sys, torch
from {module} import {task}
from ttsrl.tasks.base import run_task
from ttsrl.train import distributed as du

class Saving({task}):
    def final_metrics(self, args, trainer, valid_loader):
        torch.save({{k: v.clone() for k, v in trainer.model.state_dict().items()}}, f"{{args.exp_dir}}/rank{{du.get_rank()}}.pt")
        return super().final_metrics(args, trainer, valid_loader)

run_task(Saving, sys.argv[1:])
"""


def torchrun_saving_ranks(tmp_path, module: str, task: str, args: list[str], nproc: int = 2):
    """Run ``task`` (of ``module``) under torchrun with ``nproc`` CPU processes (gloo); each rank saves its
    final weights as ``<exp_dir>/rank<r>.pt``. Returns the finished process (stdout, stderr, returncode)."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT") and not k.startswith("SLURM_")}
    env.update(PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1")
    child = tmp_path / "child.py"
    child.write_text(SAVING_CHILD.format(module=module, task=task))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(child), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
