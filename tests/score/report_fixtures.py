"""A tiny stage-9 layout for the HTML report tests: data/<set>, exp/results.json, decode and score dirs.

``make_fake_exp(root)`` writes two test sets (``test``: 3 utterances, ``hard``: 2) scored for
``ground_truth``, ``base`` and ``dpo``; every wav is a 1 s tone at 16 kHz (its pitch tells the
role). One text holds HTML (``<b>`` and ``&``) to check the escaping.
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
    os.makedirs(exp, exist_ok=True)
    with open(os.path.join(exp, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return {"data": data, "exp": exp, "results": os.path.join(exp, "results.json")}
