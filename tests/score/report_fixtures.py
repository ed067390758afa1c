"""A tiny stage-9 layout for the HTML report tests: data/<set>, exp/results.json, decode and score dirs.

``make_fake_exp(root)`` writes two test sets (``test``: 3 utterances, ``hard``: 2) scored for
``ground_truth``, ``base`` and ``dpo``; every wav is a 1 s tone at 16 kHz (its pitch tells the
role). One text holds HTML (``<b>`` and ``&``) to check the escaping.

``make_exp_like(root, results_json)`` builds the same layout around a real results.json (11
models, 120 and 80 utterances for egs/mini_en/rl1/exp/results.json), with per-utterance scores,
side-model metrics and training logs: a realistic page for the browser test.
"""

import json
import os

import numpy as np

from ttsrl.data.audio import write_wav

SR = 16000
MODELS = ("base", "dpo")
SETS = {
    "test": {"u1": "hello <b>bold</b> & world", "u2": "a cup of coffee", "u3": "the weather is nice"},
    "hard": {"h1": "peter piper picked", "h2": "she sells sea shells"},
}


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write_kv(path, mapping) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{k} {v}\n" for k, v in sorted(mapping.items()))


def _per_utt(path, texts, offset: float) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = ["utt\tstatus\tref\thyp\twer\tcer\tnote"]
    for i, (utt, text) in enumerate(sorted(texts.items())):
        lines.append(f"{utt}\tok\t{text}\t{text} & more\t{10.0 * i + offset:.4f}\t{5.0 * i + offset:.4f}\t")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def make_fake_exp(root) -> dict:
    """Writes ``root/data`` and ``root/exp``; returns their paths and the results."""
    root = os.fspath(root)
    data, exp = os.path.join(root, "data"), os.path.join(root, "exp")
    results: dict = {"ground_truth": {}}
    for ts, texts in SETS.items():
        ddir, wav_dir = os.path.join(data, ts), os.path.join(root, "db", ts)
        wav_scp, prompts = {}, {}
        for i, utt in enumerate(sorted(texts)):
            wav_scp[utt] = os.path.join(wav_dir, f"{utt}.wav")
            prompts[utt] = os.path.join(wav_dir, f"{utt}_prompt.wav")
            write_wav(wav_scp[utt], tone(220 + 20 * i), SR)
            write_wav(prompts[utt], tone(330 + 20 * i), SR)
        _write_kv(os.path.join(ddir, "text"), texts)
        _write_kv(os.path.join(ddir, "wav.scp"), wav_scp)
        _write_kv(os.path.join(ddir, "utt2spk"), {u: u for u in texts})
        _write_kv(os.path.join(ddir, "prompt.scp"), prompts)
        _write_kv(os.path.join(ddir, "prompt_text"), {u: f"prompt of {u} <i>" for u in texts})
        _per_utt(os.path.join(exp, "ground_truth", ts, "score", "per_utt.tsv"), texts, 1.0)
        results["ground_truth"][ts] = {"wer": 3.0, "cer": 1.0, "n_utts": len(texts), "n_missing": 0}
        for m, model in enumerate(MODELS):
            dec = os.path.join(exp, model, "decode", ts)
            scp = {}
            for i, utt in enumerate(sorted(texts)):
                scp[utt] = os.path.abspath(os.path.join(dec, "wav", f"{utt}.wav"))
                write_wav(scp[utt], tone(440 + 110 * m + 20 * i), SR)
            _write_kv(os.path.join(dec, "wav.scp"), scp)
            _per_utt(os.path.join(dec, "score", "per_utt.tsv"), texts, 4.0 - 2 * m)
            results.setdefault(model, {})[ts] = {"wer": 8.0 - 3 * m, "cer": 4.0 - 2 * m, "sim": 0.6 + 0.1 * m,
                                                 "n_utts": len(texts), "n_missing": 0}  # fmt: skip
            if model != "base":  # aligned: its KL to the base LM and its training time
                results[model][ts].update(kl=0.05 * m, train_min=2.5)
    os.makedirs(exp, exist_ok=True)
    with open(os.path.join(exp, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return {"data": data, "exp": exp, "results": os.path.join(exp, "results.json")}


def _train_log(path, steps: int, start: float, seed: int) -> None:
    """A Trainer-style train.log: a training line every 10 steps, a validation line every 50."""
    rng = np.random.default_rng(seed)
    lines = []
    for step in range(10, steps + 1, 10):
        loss = start * (0.3 + 0.7 * np.exp(-step / (steps / 4))) * (1 + 0.05 * rng.standard_normal())
        lines.append(f"2025-01-01 00:00:00,000 INFO ttsrl.train.trainer: epoch 0 step {step} batch {step}: "
                     f"loss {loss:.4g} acc 0.5 lr 1.000e-04 grad_norm 1.2 (3.00 steps/s)")
        if step % 50 == 0:
            lines.append(f"2025-01-01 00:00:00,000 INFO ttsrl.train.trainer: validation at step {step} (epoch 0): "
                         f"loss {loss * 1.1:.4g} acc 0.4; best loss {loss:.4g}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def make_exp_like(root, results_path, num_wavs: int = 3, seed: int = 0) -> dict:
    """A stage-9 layout around a real ``results.json`` (e.g. egs/mini_en/rl1/exp/results.json):
    per test set a data dir of ``n_utts`` utterances, and per model a ``per_utt.tsv`` whose
    per-utterance values scatter around the stored means (so the page shows confidence
    intervals), a decode wav.scp (``num_wavs`` tones shared by the utterances), side-model
    ``metrics.json`` files and ``train.log`` files. Returns the paths, as :func:`make_fake_exp`."""
    root = os.fspath(root)
    rng = np.random.default_rng(seed)
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    data, exp = os.path.join(root, "data"), os.path.join(root, "exp")
    words = "the quick brown fox jumps over a lazy dog while seven happy birds sing".split()
    for ts in sorted({t for sets in results.values() for t in sets}):
        n = max(int(sets[ts].get("n_utts", 0)) for sets in results.values() if ts in sets) or 10
        utts = [f"spk{i % 4}-{ts}{i:04d}" for i in range(n)]
        texts = {u: " ".join(rng.choice(words, size=6)) for u in utts}
        wav_dir = os.path.join(root, "db", ts)
        tones = []
        for k in range(num_wavs):
            tones.append(os.path.join(wav_dir, f"gt{k}.wav"))
            write_wav(tones[-1], tone(200 + 30 * k, 0.6), SR)
        ddir = os.path.join(data, ts)
        _write_kv(os.path.join(ddir, "text"), texts)
        _write_kv(os.path.join(ddir, "wav.scp"), {u: tones[i % num_wavs] for i, u in enumerate(utts)})
        _write_kv(os.path.join(ddir, "prompt.scp"), {u: tones[(i + 1) % num_wavs] for i, u in enumerate(utts)})
        _write_kv(os.path.join(ddir, "prompt_text"), {u: texts[utts[(i + 1) % n]] for i, u in enumerate(utts)})
        _write_kv(os.path.join(ddir, "utt2spk"), {u: u.split("-")[0] for u in utts})
        for m_i, (model, sets) in enumerate(sorted(results.items())):
            if ts not in sets:
                continue
            means = sets[ts]
            rows = ["utt\tstatus\tref\thyp\twer\tcer\tsim\tf0v\tnll\tdnsmos\temo_ok\tnote"]
            for u in utts:
                cells = []
                for col, spread in (("wer", None), ("cer", None), ("sim", 0.06), ("f0v", 0.3), ("nll", 0.3),
                                    ("dnsmos", 0.25)):  # fmt: skip
                    mean = means.get(col)
                    if mean is None:
                        cells.append("")
                    elif spread is None:  # error rates: skewed, non-negative, same mean
                        cells.append(f"{rng.gamma(1.2, mean / 1.2) if mean > 0 else 0.0:.4f}")
                    else:
                        scale = spread if col in ("sim", "dnsmos") else spread * abs(mean)
                        cells.append(f"{mean + scale * rng.standard_normal():.4f}")
                acc = means.get("emo_acc")
                cells.append("" if acc is None else f"{100.0 * (rng.random() < acc / 100):.4f}")  # as the scorer
                rows.append("\t".join([u, "ok", texts[u], texts[u]] + cells + [""]))
            if model == "ground_truth":
                score = os.path.join(exp, "ground_truth", ts, "score")
            else:
                dec = os.path.join(exp, model, "decode", ts)
                wavs = []
                for k in range(num_wavs):
                    wavs.append(os.path.abspath(os.path.join(dec, "wav", f"tone{k}.wav")))
                    write_wav(wavs[-1], tone(300 + 40 * m_i + 15 * k, 0.6), SR)
                _write_kv(os.path.join(dec, "wav.scp"), {u: wavs[i % num_wavs] for i, u in enumerate(utts)})
                score = os.path.join(dec, "score")
            os.makedirs(score, exist_ok=True)
            with open(os.path.join(score, "per_utt.tsv"), "w", encoding="utf-8") as f:
                f.write("\n".join(rows) + "\n")
    side = {
        "tokenizer": {"ctc_cer": 6.61, "codebook_perplexity": 295.05, "codebook_usage": 0.724, "token_rate": 25.0,
                      "num_params": 2827400, "train_seconds": 4190.9},
        "reward": {"ctc_cer": 9.8, "emo_acc": 0.91, "gender_acc": 0.99, "age_acc": 0.62, "quality_corr": 0.55,
                   "text_logprob": -0.42, "text_rank_acc": 0.97, "spearman_vs_judge": -0.48,
                   "spearman_vs_judge_p": 1.2e-9, "spearman_vs_judge_candidates": 160, "dev_utts": 120},
        "judge": {"dev_cer": 21.3, "num_params": 1500000},
    }
    for sub, metrics in side.items():
        os.makedirs(os.path.join(exp, sub), exist_ok=True)
        with open(os.path.join(exp, sub, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)
    for i, sub in enumerate(("tokenizer", "base/lm", "base/flow", "reward", "judge")):
        _train_log(os.path.join(exp, sub, "train.log"), 500, 5.0 - 0.6 * i, i)
    for i, model in enumerate(m for m in results if m not in ("ground_truth", "base", "resynth")):
        _train_log(os.path.join(exp, model, "lm", "train.log"), 300, 0.7, 10 + i)
    return {"data": data, "exp": exp, "results": os.path.abspath(results_path)}
