#!/usr/bin/env python3
"""Sampling throughput: ttsrl's KV-cached sampler vs Hugging Face `transformers` generate().

Both models have the same depth, width, heads, feed-forward size and vocabulary (a GPT-2 built
from our CodecLM config); both sample with top-k from the same batch of prefixes for the same
number of new tokens, in one process on this machine. Also reports our sampler without its
KV cache, and a second workload with rows of different lengths (texts from a quarter of
``--prefix`` to all of it, each row ending at its own length bound as TTS candidates do):
there our sampler drops finished rows from the batch while generate() computes every row
until the longest ends; both count only the rows' own tokens (``*_varlen``). The last line is
one JSON object: ours/peer in tokens/s and ratio = ours / peer of the equal-length workload.

Usage: python bench/sample_throughput.py [--batch 8] [--prefix 64] [--new 200] [--repeats 3] [--position rope]
"""
from __future__ import annotations

import argparse
import json
import platform

import torch
from timing import median_time

from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.sample.sampler import SamplingConfig, sample


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prefix", type=int, default=64, help="text tokens per row (the prompt)")
    p.add_argument("--new", type=int, default=200, help="speech tokens generated per row")
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--n_layers", type=int, default=6)
    p.add_argument("--n_heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=512, help="speech codebook size")
    p.add_argument("--top_k", type=int, default=50)
    p.add_argument("--position", default="learned", choices=["learned", "rope"],
                   help="our model's positions: learned (as GPT-2's) or rope (the small config's)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per sampler; the median is reported")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = CodecLMConfig(text_vocab_size=64, speech_vocab_size=args.vocab, d_model=args.d_model,
                        n_layers=args.n_layers, n_heads=args.n_heads, d_ff=4 * args.d_model, dropout=0.0,
                        max_len=args.prefix + args.new + 8, position=args.position, speech_pos_rate=0.6)
    ours = CodecLM(cfg).eval()
    peer = GPT2LMHeadModel(GPT2Config(vocab_size=args.vocab + 1, n_positions=cfg.max_len, n_embd=cfg.d_model,
                                      n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_ff,
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).eval()
    B, P, L = args.batch, args.prefix, args.new
    g = torch.Generator().manual_seed(0)
    text = torch.randint(2, 64, (B, P), generator=g)
    lens = torch.full((B,), P)
    ratio = (L + 1) / P  # exactly L tokens: <eos> is barred before and forced at L + 1
    scfg = SamplingConfig(top_k=args.top_k, max_len_ratio=ratio, min_len_ratio=ratio, max_len=L + 1)
    ids = torch.randint(0, args.vocab, (B, P), generator=g)

    def run_ours(use_cache=True):
        out = sample(ours, text, lens, SamplingConfig(**{**scfg.__dict__, "use_cache": use_cache}))
        assert all(len(t) == L for t in out.tokens), [len(t) for t in out.tokens]

    # rows of different lengths: row i ends after ratio * var_lens[i] - 1 tokens (<eos> forced at the bound)
    var_lens = torch.linspace(P / 4, P, B).round().long()
    var_tokens = int(((var_lens.float() * ratio).ceil().long() - 1).clamp(max=L).sum())

    def run_ours_varlen():
        out = sample(ours, text, var_lens, scfg)
        assert sum(len(t) for t in out.tokens) == var_tokens, [len(t) for t in out.tokens]

    def run_peer():
        with torch.inference_mode():
            out = peer.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=args.top_k,
                                max_new_tokens=L, min_new_tokens=L, pad_token_id=args.vocab,
                                eos_token_id=args.vocab)
        assert out.shape == (B, P + L), out.shape

    t_ours = median_time(run_ours, args.repeats)
    t_peer = median_time(run_peer, args.repeats)
    t_nocache = median_time(lambda: run_ours(use_cache=False), 1)
    t_ours_var = median_time(run_ours_varlen, args.repeats)  # generate() runs the same as run_peer: t_peer
    tok = B * L
    result = {
        "bench": "sample_throughput",
        "ours": round(tok / t_ours, 1),
        "peer": round(tok / t_peer, 1),
        "unit": "tokens/s",
        "ratio": round(t_peer / t_ours, 2),
        "ours_no_cache": round(tok / t_nocache, 1),
        "cache_speedup": round(t_nocache / t_ours, 2),
        "ours_varlen": round(var_tokens / t_ours_var, 1),
        "peer_varlen": round(var_tokens / t_peer, 1),
        "ratio_varlen": round(t_peer / t_ours_var, 2),
        "peer_name": "transformers GPT2LMHeadModel.generate",
        "params_ours": ours.num_params(),
        "params_peer": sum(p.numel() for p in peer.parameters()),
        "batch": B, "prefix": P, "new_tokens": L, "d_model": cfg.d_model, "n_layers": cfg.n_layers,
        "position": cfg.position,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
    }
    print(f"ours (KV cache): {result['ours']} tok/s | ours (no cache): {result['ours_no_cache']} tok/s | "
          f"transformers generate: {result['peer']} tok/s | rows of different lengths: ours "
          f"{result['ours_varlen']} vs generate {result['peer_varlen']} tok/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
