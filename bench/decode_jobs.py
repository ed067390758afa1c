#!/usr/bin/env python3
"""Stages 8 and 9 on a CPU: N parallel jobs of one thread vs one job with all threads.

With ``--decode_nj N`` (N > 1) rl.sh runs ``ttsrl.bin.synthesize`` and ``ttsrl.bin.score_all``
as ``--job K --num_jobs N --num_threads 1`` for K = 1..N; with N = 1 (the default) each is one
process with torch's threads. This runs the same work both ways and reports the wall time of each:

* synthesis of a data dir's texts with its prompts (default: mini_en's test set, written by
  ``cd egs/mini_en/rl1 && ./run.sh --stop_stage 1``) by random-weight models of a recipe size
  (codec LM, flow model and speech tokenizer built from conf/<model>/<conf_size>.yaml). Random
  weights do the work of trained ones: the LM is held to 1.8-2 speech tokens per text token (a
  trained model's rate on mini_en), the flow model runs its NFE and Griffin-Lim its iterations;
* scoring (stage 9's metrics: a random-weight CTC judge of conf/asr/<conf_size>.yaml, SIM,
  F0 variance, CTC NLL, DNSMOS) of ``--score_utts`` of those utterances under two model tags.

The last line is one JSON object: ours = utterances/s of synthesis with ``--jobs`` parallel jobs,
peer = with one job, ratio = ours / peer; ``score`` holds the same for scoring.

Measured on 2026-12-02 (2 cores, demo sizes, mini_en test): synthesis 1.00 / 1.05 / 0.88 utt/s
with 1 / 2 / 4 jobs, scoring 0.282 / 0.287 utt/s with 1 / 2 jobs (DNSMOS is ~3.1 of its ~3.5 s
per utterance): torch and onnxruntime already use both cores, so decode_nj stays 1 on a CPU
machine; it is for clusters, where the jobs run on different nodes.

Usage: python bench/decode_jobs.py [--conf_size demo] [--jobs 2] [--num_utts 40] [--also 4]
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch

from ttsrl.data.datadir import read_kv, write_kv
from ttsrl.models.asr import CTCASR, CTCASRConfig, asr_conf_dict
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.models.flow import FlowConfig, FlowMatching
from ttsrl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig
from ttsrl.text.tokenizer import build_token_list, write_token_list
from ttsrl.utils.config import build_dataclass, load_yaml, to_plain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf_size", default="demo", help="model sizes: conf/{lm,flow,tokenizer}/<conf_size>.yaml")
    p.add_argument("--data_dir", default=os.path.join(ROOT, "egs/mini_en/rl1/data/test"),
                   help="data dir with text, prompt.scp and prompt_text")
    p.add_argument("--num_utts", type=int, default=40, help="its first utterances synthesized")
    p.add_argument("--jobs", type=int, default=2, help="parallel jobs of one thread (ours)")
    p.add_argument("--also", type=int, nargs="*", default=[4], help="more job counts to report")
    p.add_argument("--score_utts", type=int, default=8, help="utterances scored per model tag (0: no scoring)")
    p.add_argument("--decode_args", default="--top_k 10 --temperature 0.8 --flow_n_steps 6",
                   help="options of ttsrl.bin.synthesize (demo.sh's)")
    return p


def build_models(root: str, conf_size: str, text_vocab: list[str]) -> None:
    """Random-weight tokenizer (root/tokenizer), LM (root/lm.pt) and flow (root/flow.pt) of a recipe size."""
    torch.manual_seed(0)

    def save(model, cfg, path, **extra):
        torch.save({"model": model.state_dict(), "config": {"model_conf": to_plain(dataclasses.asdict(cfg)),
                                                            **extra}}, path)

    def model_conf(name):
        return dict(load_yaml(os.path.join(ROOT, "conf", name, f"{conf_size}.yaml"))["model_conf"])

    os.makedirs(os.path.join(root, "tokenizer"))
    write_token_list(os.path.join(root, "tokenizer", "tokens.txt"), text_vocab)
    tcfg = build_dataclass(SpeechTokenizerConfig, {**model_conf("tokenizer"), "vocab_size": len(text_vocab)})
    tok = SpeechTokenizer(tcfg)
    save(tok, tcfg, os.path.join(root, "tokenizer", "model.pt"), token_type="char")
    lconf = {**model_conf("lm"), "text_vocab_size": len(text_vocab), "speech_vocab_size": tok.codebook_size}
    if lconf.get("position") == "rope" and not lconf.get("speech_pos_rate"):
        lconf["speech_pos_rate"] = 0.5
    lcfg = build_dataclass(CodecLMConfig, lconf)
    save(CodecLM(lcfg), lcfg, os.path.join(root, "lm.pt"))
    fcfg = build_dataclass(FlowConfig, {**model_conf("flow"), "vocab_size": tok.codebook_size})
    save(FlowMatching(fcfg), fcfg, os.path.join(root, "flow.pt"))


def subset(data_dir: str, out: str, n: int) -> list[str]:
    """The first n utterances of data_dir (text, wav.scp, utt2spk, prompt.scp, prompt_text) in out."""
    os.makedirs(out)
    utts = []
    for name in ("text", "wav.scp", "utt2spk", "prompt.scp", "prompt_text"):
        src = os.path.join(data_dir, name)
        if not os.path.exists(src):
            raise SystemExit(f"{src} is missing: the benchmark needs a prompted data dir "
                             "(cd egs/mini_en/rl1 && ./run.sh --stop_stage 1)")
        kv = read_kv(src)
        utts = utts or sorted(kv)[:n]  # the text's
        write_kv(os.path.join(out, name), {u: kv[u] for u in utts})
    return utts


def run_jobs(cmd: list[str], jobs: int) -> float:
    """Wall seconds of ``jobs`` concurrent processes of ``cmd`` (one thread each when jobs > 1)."""
    cmd = [sys.executable, "-m", *cmd, "--num_jobs", str(jobs), "--num_threads", "1" if jobs > 1 else "0"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([*cmd, "--job", str(k)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for k in range(1, jobs + 1)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{cmd[2]} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return time.perf_counter() - t0


def build_judge(path: str, conf_size: str, texts: list[str]) -> None:
    """A random-weight CTC judge of conf/asr/<conf_size>.yaml, saved as the trainer saves model.pt."""
    conf = build_dataclass(CTCASRConfig, {**load_yaml(os.path.join(ROOT, "conf", "asr", f"{conf_size}.yaml"))
                                          ["model_conf"], "token_list": build_token_list("char", texts)})
    torch.save({"model": CTCASR(conf).state_dict(), "config": {"model_conf": asr_conf_dict(conf)}}, path)


def score_seconds(tmp: str, wavs: dict[str, str], jobs: int) -> float:
    """Wall seconds of score_all in ``jobs`` jobs: ``wavs`` (of tmp/score_data/test) under two model tags."""
    exp = os.path.join(tmp, f"score_exp{jobs}")
    for tag in ("m1", "m2"):
        os.makedirs(os.path.join(exp, tag, "decode", "test"))
        write_kv(os.path.join(exp, tag, "decode", "test", "wav.scp"), wavs)
    return run_jobs(["ttsrl.bin.score_all", "--data_root", os.path.join(tmp, "score_data"), "--exp_dir", exp,
                     "--test_sets", "test", "--judge_path", os.path.join(tmp, "judge.pt"), "--metrics",
                     "wer,cer,sim,f0v,nll,dnsmos", "--gt_metrics", "wer,cer", "--second_judge", "none"], jobs)


def main(argv=None):
    args = get_parser().parse_args(argv)
    counts = list(dict.fromkeys([1, args.jobs, *args.also]))
    rate, score_rate = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        utts = subset(args.data_dir, data, args.num_utts)
        chars = sorted({c for name in ("text", "prompt_text") for t in read_kv(os.path.join(data, name)).values()
                        for c in t if c != " "})
        build_models(tmp, args.conf_size, ["<blank>", "<unk>", "<space>", *chars, "<sos/eos>"])
        for jobs in counts:
            out = os.path.join(tmp, f"decode{jobs}")
            sec = run_jobs(["ttsrl.bin.synthesize", "--data_dir", data, "--out_dir", out, "--tokenizer_dir",
                            os.path.join(tmp, "tokenizer"), "--lm", os.path.join(tmp, "lm.pt"), "--flow",
                            os.path.join(tmp, "flow.pt"), "--ngpu", "0", "--max_len_ratio", "2",
                            "--min_len_ratio", "1.8", *args.decode_args.split()], jobs)
            written = sum(1 for f in os.listdir(os.path.join(out, "wav")) if f.endswith(".wav"))
            if written != len(utts):
                errors = "".join(open(f, encoding="utf-8").read() for f in glob.glob(os.path.join(out, "errors*")))
                raise SystemExit(f"{jobs} jobs wrote {written} of {len(utts)} utterances:\n{errors}")
            rate[jobs] = len(utts) / sec
            print(f"synthesis, {jobs} job(s): {sec:.1f} s for {len(utts)} utterances ({rate[jobs]:.3f} utt/s)")
        if args.score_utts:
            scored = subset(data, os.path.join(tmp, "score_data", "test"), args.score_utts)
            build_judge(os.path.join(tmp, "judge.pt"), args.conf_size, list(read_kv(os.path.join(data, "text")).values()))
            synthesized = read_kv(os.path.join(tmp, "decode1", "wav.scp"))
            for jobs in counts[:2]:
                sec = score_seconds(tmp, {u: synthesized[u] for u in scored}, jobs)
                score_rate[jobs] = 2 * args.score_utts / sec
                print(f"scoring, {jobs} job(s): {sec:.1f} s for 2 x {args.score_utts} utterances "
                      f"({score_rate[jobs]:.3f} utt/s)")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads in one job), conf_size {args.conf_size}, {args.decode_args}; command: python "
          f"bench/decode_jobs.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    result = {"ours": round(rate[args.jobs], 4), "peer": round(rate[1], 4), "unit": "utt/s",
              "ratio": round(rate[args.jobs] / rate[1], 3), "jobs": {str(j): round(r, 4) for j, r in rate.items()}}
    if score_rate:
        result["score"] = {"ours": round(score_rate[args.jobs], 4), "peer": round(score_rate[1], 4),
                           "ratio": round(score_rate[args.jobs] / score_rate[1], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
