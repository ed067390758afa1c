#!/usr/bin/env python3
"""Real-time factor of the flow-matching acoustic model vs the number of function evaluations (NFE).

Synthesizes the same batch of token sequences (``--batch`` utterances of ``--seconds`` s, with a
``--prompt_seconds`` prompt, classifier-free guidance on, i.e. 2 estimator passes per step) with
the Euler solver at every NFE of ``--nfe``, and reports seconds of compute per second of audio:
flow alone and flow + Griffin-Lim (the default vocoder). The model is a trained ``model.pt``
(``--flow``) or, by default, ``conf/flow/small.yaml`` with random weights: compute does not
depend on the weights. Distillation to few steps (DMO) starts from this table.

The last line is one JSON object: ``ours`` = flow RTF at ``--few`` NFE (default 4), ``peer`` =
flow RTF at ``--many`` NFE (default 32), ratio = peer / ours (how many times faster few-step is).

``--student``: the DMO student (``--student_flow``, e.g. ``exp/base/flow_dmo/student``; default the
same random model) at every NFE of ``--student_nfe`` (renoise sampler, no guidance: one estimator
pass per step) against the teacher at the recipe's decoding setting (``--teacher_nfe`` 10 Euler
steps with guidance ``--cfg_scale``). ``ours`` = the fastest student among ``--meets_bar`` (the NFEs
whose judged CER and SIM met the quality bar of the DMO rows; default all), ``peer`` = the
teacher, ratio = peer / ours.

Usage: python bench/flow_rtf.py [--flow exp/base/flow/model.pt] [--nfe 1 2 4 8 16 32] [--threads 2]
       python bench/flow_rtf.py --student [--flow exp/base/flow --student_flow exp/base/flow_dmo/student]
"""
from __future__ import annotations

import argparse
import json
import os
import platform

import torch
from timing import median_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flow", default=None, help="a trained flow model.pt (default: the small config, random weights)")
    p.add_argument("--config", default=os.path.join(ROOT, "conf/flow/small.yaml"), help="config without --flow")
    p.add_argument("--nfe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--few", type=int, default=4, help="NFE reported as 'ours'")
    p.add_argument("--many", type=int, default=32, help="NFE reported as 'peer'")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0, help="audio per utterance")
    p.add_argument("--prompt_seconds", type=float, default=2.0)
    p.add_argument("--cfg_scale", type=float, default=0.7)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per NFE; the median is reported")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--vocoder", type=str, default="true", choices=["true", "false"], help="also time Griffin-Lim")
    p.add_argument("--student", action="store_true", help="time the DMO student against the teacher (see above)")
    p.add_argument("--student_flow", default=None, help="the student's model.pt or folder (default: as --flow)")
    p.add_argument("--student_nfe", type=int, nargs="+", default=[1, 2, 4], help="student steps timed")
    p.add_argument("--teacher_nfe", type=int, default=10, help="the teacher's decoding steps (with guidance)")
    p.add_argument("--meets_bar", type=int, nargs="*", default=None,
                   help="student NFEs that met the quality bar (default: all of --student_nfe)")
    return p


def build_flow(args, path=None):
    from ttsrl.models.flow import FlowConfig, FlowMatching

    if path or args.flow:
        from ttsrl.models.flow import load_flow

        return load_flow(path or args.flow)
    import yaml

    with open(args.config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)["model_conf"]
    return FlowMatching(FlowConfig(**{**conf, "vocab_size": 1000})).eval()


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from ttsrl.models.vocoder import GriffinLim

    flow = build_flow(args)
    cfg = flow.config
    frames_per_s = 100  # hop 160 at 16 kHz
    tok_per_s = frames_per_s / cfg.token_frames
    L, P = int(args.seconds * tok_per_s), int(args.prompt_seconds * tok_per_s)
    g = torch.Generator().manual_seed(0)
    V = cfg.vocab_size
    tokens = torch.randint(0, V, (args.batch, L), generator=g)
    lens = torch.full((args.batch,), L)
    prompt = torch.randint(0, V, (args.batch, P), generator=g)
    prompt_mel = torch.randn(args.batch, cfg.n_mels, P * cfg.token_frames, generator=g) - 5.0
    audio_s = args.batch * args.seconds
    vocoder = GriffinLim() if args.vocoder == "true" else None

    def timed(model, nfe, cfg_scale, solver):
        def run():
            mel, _ = model.synthesize(tokens, lens, prompt_tokens=prompt, prompt_mel=prompt_mel, n_steps=nfe,
                                      cfg_scale=cfg_scale, solver=solver, generator=torch.Generator().manual_seed(1))
            return mel
        with torch.inference_mode():
            return median_time(run, args.repeats) / audio_s

    if args.student:
        student = build_flow(args, args.student_flow)
        teacher_rtf = timed(flow, args.teacher_nfe, args.cfg_scale, "euler")
        srows = [{"nfe": n, "flow_rtf": timed(student, n, 0.0, "renoise")} for n in args.student_nfe]
        print(f"\n| flow | NFE | estimator passes | RTF | teacher RTF / RTF |\n|---|---|---|---|---|\n"
              f"| teacher (Euler, guidance {args.cfg_scale}) | {args.teacher_nfe} | {2 * args.teacher_nfe} | "
              f"{teacher_rtf:.4f} | 1 |")
        for r in srows:
            print(f"| student (renoise) | {r['nfe']} | {r['nfe']} | {r['flow_rtf']:.4f} | "
                  f"{teacher_rtf / r['flow_rtf']:.2f} |")
        ok = [r for r in srows if args.meets_bar is None or r["nfe"] in args.meets_bar]
        if not ok:
            raise SystemExit(f"--meets_bar {args.meets_bar}: none of --student_nfe {args.student_nfe}")
        best = min(ok, key=lambda r: r["flow_rtf"])
        print(json.dumps({
            "bench": "flow_rtf_student", "ours": round(best["flow_rtf"], 5), "peer": round(teacher_rtf, 5),
            "unit": "RTF (s compute / s audio)", "ratio": round(teacher_rtf / best["flow_rtf"], 3),
            "ours_is": f"DMO student at NFE {best['nfe']} (renoise, no guidance)",
            "peer_is": f"teacher at NFE {args.teacher_nfe} (Euler, guidance {args.cfg_scale})",
            "table": srows, "meets_bar": args.meets_bar, "batch": args.batch, "seconds": args.seconds,
            "threads": torch.get_num_threads(), "weights": args.student_flow or args.flow or "random (small config)",
            "machine": platform.machine(),
        }))
        return

    rows = []
    with torch.inference_mode():
        for nfe in sorted(set(args.nfe) | {args.few, args.many}):
            def run(nfe=nfe):
                mel, mel_lens = flow.synthesize(tokens, lens, prompt_tokens=prompt, prompt_mel=prompt_mel,
                                                n_steps=nfe, cfg_scale=args.cfg_scale,
                                                generator=torch.Generator().manual_seed(1))
                return mel

            t_flow = median_time(run, args.repeats)
            row = {"nfe": nfe, "flow_rtf": t_flow / audio_s}
            if vocoder is not None:
                mel = run()
                t_voc = median_time(lambda mel=mel: vocoder.mel_to_wav(mel), 1)
                row["flow_vocoder_rtf"] = (t_flow + t_voc) / audio_s
            rows.append(row)
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)

    print("\n| NFE | flow RTF | flow + Griffin-Lim RTF |\n|---|---|---|")
    for r in rows:
        print(f"| {r['nfe']} | {r['flow_rtf']:.4f} | {r.get('flow_vocoder_rtf', float('nan')):.4f} |")
    by_nfe = {r["nfe"]: r["flow_rtf"] for r in rows}
    ours, peer = by_nfe[args.few], by_nfe[args.many]
    print(json.dumps({
        "bench": "flow_rtf", "ours": round(ours, 5), "peer": round(peer, 5), "unit": "RTF (s compute / s audio)",
        "ratio": round(peer / ours, 3), "ours_is": f"flow at NFE {args.few}", "peer_is": f"flow at NFE {args.many}",
        "table": rows, "batch": args.batch, "seconds": args.seconds, "threads": torch.get_num_threads(),
        "weights": args.flow or "random (small config)", "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
