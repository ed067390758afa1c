#!/usr/bin/env python3
"""Synthesize the mini_en corpus with espeak-ng and write its Kaldi data directories.

Steps (all deterministic functions of ``--seed``):

1. text: distinct sentences from the grammar of ``sentences.py`` are split into train,
   dev and test, so no sentence is shared between train and a held-out set; about a
   quarter of the train sentences are spoken twice by two different speakers.
   ``test_hard`` gets repetitions, 20-30 word sentences, numbers and tongue twisters.
2. plan: every utterance gets a speaker, an emotion style and a degradation
   (``speakers.py`` documents the three); speakers and styles are balanced, a share
   ``--degrade_prob`` of train/dev (``--test_degrade_prob`` of test/test_hard) is degraded.
3. audio: espeak-ng (22.05 kHz) -> spectral tilt of the style -> 16 kHz (soxr) ->
   degradation -> 16-bit mono wav, in ``--nj`` processes. A wav is written atomically
   (temporary name, then rename) to ``<db_dir>/<set>/<spk>/<utt>-<hash>.wav`` where the
   hash covers everything that determines its samples: a wav that exists is complete and
   right, and is not synthesized again (so an interrupted run resumes, and a changed
   option re-synthesizes only what it changes). espeak-ng is deterministic, so the same
   seed gives the same bytes.
4. data dirs, written last: ``<data_dir>/<set>/`` with wav.scp (absolute paths), text,
   utt2spk, spk2utt, utt2gender (m/f), utt2age (child/young/adult/senior), utt2emo
   (neutral/happy/sad/angry), utt2quality (1-5, clean = 5), utt2degrade (``clean``,
   ``noise_snr10``, ...), utt2dur (seconds), utt2lang (en). dev, test and test_hard also
   get ``prompt.scp`` and ``prompt_text``: for zero-shot TTS, each utterance is paired with
   a train utterance of the same speaker (clean and neutral, 5-12 words when there is one;
   chosen at random with the seed) -- the prompt's wav path and its transcript.

Utterance ids are ``<spk>-<6 digits>`` (``spk03-000123``), numbered over all sets, so
sorting keeps utt2spk and spk2utt consistent.

Usage::

    python local/synthesize.py --data_dir data --db_dir db --seed 1 --nj 4
    python local/synthesize.py --num_train 24 --num_dev 8 --num_test 8 --num_test_hard 8 \\
        --data_dir /tmp/d --db_dir /tmp/w
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import multiprocessing
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from degrade import degrade, high_shelf, limit_peak  # noqa: E402
from sentences import generate_hard_sentences, generate_sentences, num_words  # noqa: E402
from speakers import DEGRADATIONS, EMOTIONS, SPEAKERS, Speaker, check_espeak  # noqa: E402

from ttsrl.data.audio import write_wav  # noqa: E402
from ttsrl.data.datadir import DataDir  # noqa: E402
from ttsrl.utils.cli import setup_logging  # noqa: E402

logger = logging.getLogger("mini_en")

SETS = ("train", "dev", "test", "test_hard")
HELD_OUT = ("dev", "test", "test_hard")
ESPEAK = "espeak-ng"
# bump when the synthesis changes in a way the spec below does not capture
SYNTH_VERSION = 1


@dataclass(frozen=True)
class Utt:
    utt: str
    dset: str
    spk: Speaker
    text: str
    emo: str
    degrade: str

    def spec(self, seed: int, fs: int) -> dict:
        """Everything that determines the samples of this utterance."""
        emo = EMOTIONS[self.emo]
        return {
            "version": SYNTH_VERSION,
            "text": self.text,
            "voice": self.spk.espeak_voice,
            "pitch": min(99, max(0, self.spk.pitch + emo.pitch_offset)),
            "speed": int(round(self.spk.speed * emo.speed_factor)),
            "amplitude": emo.amplitude,
            "range": emo.pitch_range,
            "tilt_db": emo.tilt_db,
            "degrade": self.degrade,
            "noise_seed": noise_seed(seed, self.utt),
            "fs": fs,
        }

    def wav_path(self, db_dir: str, seed: int, fs: int) -> str:
        blob = json.dumps(self.spec(seed, fs), sort_keys=True).encode()
        digest = hashlib.sha1(blob).hexdigest()[:10]
        return os.path.join(db_dir, self.dset, self.spk.spk, f"{self.utt}-{digest}.wav")


def noise_seed(seed: int, utt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{utt}".encode()).digest()[:8], "little")


# ----------------------------------------------------------------------------------------
# Plan: text, speakers, styles, degradations (no audio yet)
# ----------------------------------------------------------------------------------------


def split_sentences(args) -> dict[str, list[str]]:
    """Distinct sentences per set; the held-out sets share none with train."""
    n_train_sent = args.num_train_sentences or max(1, math.ceil(args.num_train * 0.75))
    n_train_sent = min(n_train_sent, args.num_train)
    rng = random.Random(f"mini_en-text-{args.seed}")
    pool = generate_sentences(n_train_sent + args.num_dev + args.num_test, rng)
    out = {
        "train": pool[:n_train_sent],
        "dev": pool[n_train_sent : n_train_sent + args.num_dev],
        "test": pool[n_train_sent + args.num_dev :],
    }
    rng_hard = random.Random(f"mini_en-hard-{args.seed}")
    out["test_hard"] = generate_hard_sentences(args.num_test_hard, rng_hard, exclude=set(pool))
    check_disjoint(out)
    return out


def check_disjoint(sents: dict[str, list[str]]) -> None:
    train = set(sents["train"])
    for dset in HELD_OUT:
        shared = train & set(sents[dset])
        if shared:
            raise RuntimeError(
                f"{len(shared)} sentences of {dset} are also in train, e.g. {sorted(shared)[0]!r}"
            )


def balanced(items: list, n: int, rng: random.Random) -> list:
    """``n`` draws from ``items`` with every item used n/len(items) times (+-1), shuffled."""
    out = [items[i % len(items)] for i in range(n)]
    rng.shuffle(out)
    return out


def pick_degradations(n: int, prob: float, rng: random.Random) -> list[str]:
    """Exactly round(prob * n) of n degraded, kinds drawn by their weights."""
    kinds = [d for d in DEGRADATIONS.values() if d.name != "clean"]
    degraded = set(rng.sample(range(n), int(round(prob * n))))
    picks = rng.choices([d.name for d in kinds], weights=[d.weight for d in kinds], k=n)
    return [picks[i] if i in degraded else "clean" for i in range(n)]


def plan_corpus(args) -> dict[str, list[Utt]]:
    """Every utterance of every set, in id order."""
    sents = split_sentences(args)
    rng = random.Random(f"mini_en-plan-{args.seed}")
    emotions = list(EMOTIONS)
    spk_idx = list(range(len(SPEAKERS)))
    rows: dict[str, list[tuple[str, Speaker]]] = {}

    # train: each sentence once, balanced over speakers; the extra utterances repeat
    # sentences with another speaker than the first reading
    first = list(sents["train"])
    rng.shuffle(first)
    first_spk = balanced(spk_idx, len(first), rng)
    rows["train"] = [(t, SPEAKERS[s]) for t, s in zip(first, first_spk, strict=True)]
    n_extra = args.num_train - len(first)
    if n_extra <= len(first):
        repeated = rng.sample(range(len(first)), n_extra)
    else:  # --num_train_sentences below half of --num_train: some are read three times or more
        repeated = [rng.randrange(len(first)) for _ in range(n_extra)]
    for i in repeated:
        other = (first_spk[i] + 1 + rng.randrange(len(SPEAKERS) - 1)) % len(SPEAKERS)
        rows["train"].append((first[i], SPEAKERS[other]))

    # held-out sets: speakers that have train utterances, so that prompts exist
    train_spks = sorted({s.spk for _, s in rows["train"]})
    held_spk = [s for s in SPEAKERS if s.spk in train_spks]
    for dset in HELD_OUT:
        spks = balanced(held_spk, len(sents[dset]), rng)
        rows[dset] = list(zip(sents[dset], spks, strict=True))

    plan: dict[str, list[Utt]] = {}
    counter = 0
    for dset in SETS:
        prob = args.degrade_prob if dset in ("train", "dev") else args.test_degrade_prob
        emos = balanced(emotions, len(rows[dset]), rng)
        degs = pick_degradations(len(rows[dset]), prob, rng)
        utts = []
        for (text, spk), emo, deg in zip(rows[dset], emos, degs, strict=True):
            utts.append(Utt(f"{spk.spk}-{counter:06d}", dset, spk, text, emo, deg))
            counter += 1
        plan[dset] = utts
    return plan


def choose_prompts(plan: dict[str, list[Utt]], seed: int) -> dict[str, dict[str, Utt]]:
    """For each held-out utterance, a train utterance of the same speaker to prompt with."""
    by_spk: dict[str, list[Utt]] = {}
    for u in plan["train"]:
        by_spk.setdefault(u.spk.spk, []).append(u)
    tiers = (
        lambda u: u.degrade == "clean" and u.emo == "neutral" and 5 <= num_words(u.text) <= 12,
        lambda u: u.degrade == "clean" and u.emo == "neutral",
        lambda u: u.degrade == "clean",
        lambda u: True,
    )
    prompts: dict[str, dict[str, Utt]] = {}
    for dset in HELD_OUT:
        prompts[dset] = {}
        for u in plan[dset]:
            cands = by_spk.get(u.spk.spk, [])
            for ok in tiers:
                pool = [c for c in cands if ok(c) and c.text != u.text]
                if pool:
                    break
            else:
                raise RuntimeError(f"no train utterance of {u.spk.spk} to prompt {u.utt} with")
            prompts[dset][u.utt] = random.Random(f"mini_en-prompt-{seed}-{u.utt}").choice(pool)
    return prompts


# ----------------------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------------------


def parse_wav_bytes(data: bytes, what: str) -> tuple[np.ndarray, int]:
    """16-bit mono PCM from espeak-ng's ``--stdout`` (its RIFF sizes are placeholders, so
    the chunks are walked by hand and the data chunk runs to the end)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError(f"{what}: espeak-ng did not write a wav ({len(data)} bytes)")
    pos, sr = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"fmt ":
            channels = int.from_bytes(data[pos + 10 : pos + 12], "little")
            sr = int.from_bytes(data[pos + 12 : pos + 16], "little")
            bits = int.from_bytes(data[pos + 22 : pos + 24], "little")
            if channels != 1 or bits != 16:
                raise RuntimeError(f"{what}: expected 16-bit mono, got {channels} channels of {bits} bits")
        elif cid == b"data":
            if sr is None:
                raise RuntimeError(f"{what}: wav without a fmt chunk")
            pcm = data[pos + 8 :]
            pcm = pcm[: len(pcm) // 2 * 2]
            return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, sr
        pos += 8 + size
    raise RuntimeError(f"{what}: wav without a data chunk")


def espeak_command(spec: dict) -> list[str]:
    ssml = f'<speak><prosody range="{spec["range"]}">{escape(spec["text"])}</prosody></speak>'
    return [ESPEAK, "-m", "-v", spec["voice"], "-p", str(spec["pitch"]), "-s", str(spec["speed"]),
            "-a", str(spec["amplitude"]), "--stdout", ssml]  # fmt: skip


def render(spec: dict, what: str = "utterance") -> np.ndarray:
    """The float32 samples at ``spec['fs']`` of one utterance."""
    cmd = espeak_command(spec)
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(
            f"{what}: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
        )
    x, sr = parse_wav_bytes(r.stdout, what)
    if x.size < sr // 10:
        raise RuntimeError(f"{what}: espeak-ng produced only {x.size} samples for {spec['text']!r}")
    x = limit_peak(high_shelf(x, sr, spec["tilt_db"]))
    x = soxr.resample(x, sr, spec["fs"], quality="HQ").astype(np.float32)
    x = degrade(x, spec["fs"], spec["degrade"], np.random.default_rng(spec["noise_seed"]))
    return limit_peak(x, 0.999)


def synthesize_one(job: tuple[str, str, dict]) -> tuple[str, int, bool]:
    """(utt, number of samples, synthesized now?) -- an existing wav is only measured."""
    utt, path, spec = job
    if os.path.isfile(path):
        return utt, sf.info(path).frames, False
    x = render(spec, what=utt)
    write_wav(path, x, spec["fs"])
    return utt, len(x), True


def synthesize_all(jobs: list[tuple[str, str, dict]], nj: int) -> dict[str, int]:
    """Run the jobs over ``nj`` processes with a progress bar; returns utt -> samples."""
    frames: dict[str, int] = {}
    made = 0
    bar = tqdm(total=len(jobs), desc="synthesize", unit="utt", mininterval=1.0, dynamic_ncols=True)
    if nj <= 1:
        results = map(synthesize_one, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(nj)
        results = pool.imap_unordered(synthesize_one, jobs, chunksize=8)
    try:
        for utt, n, new in results:
            frames[utt] = n
            made += new
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    logger.info("synthesized %d wavs, %d already existed", made, len(jobs) - made)
    return frames


# ----------------------------------------------------------------------------------------
# Data directories
# ----------------------------------------------------------------------------------------


def write_data_dirs(plan, prompts, paths, frames, data_dir: str, fs: int) -> None:
    for dset, utts in plan.items():
        labels = {
            "utt2gender": {u.utt: u.spk.gender for u in utts},
            "utt2age": {u.utt: u.spk.age for u in utts},
            "utt2emo": {u.utt: u.emo for u in utts},
            "utt2quality": {u.utt: str(DEGRADATIONS[u.degrade].quality) for u in utts},
            "utt2degrade": {u.utt: u.degrade for u in utts},
            "utt2dur": {u.utt: f"{frames[u.utt] / fs:.3f}" for u in utts},
            "utt2lang": {u.utt: "en" for u in utts},
        }
        extra = {}
        if dset in prompts:
            extra["prompt.scp"] = {k: paths[p.utt] for k, p in prompts[dset].items()}
            extra["prompt_text"] = {k: p.text for k, p in prompts[dset].items()}
        d = DataDir(
            wav_scp={u.utt: paths[u.utt] for u in utts},
            text={u.utt: u.text for u in utts},
            utt2spk={u.utt: u.spk.spk for u in utts},
            labels=labels,
            extra=extra,
        )
        d.write(os.path.join(data_dir, dset))


def summarize(plan, frames, fs: int) -> str:
    lines = []
    all_utts = [u for utts in plan.values() for u in utts]
    for dset, utts in plan.items():
        hours = sum(frames[u.utt] for u in utts) / fs / 3600
        lines.append(
            f"{dset:9s} {len(utts):5d} utts  {len({u.text for u in utts}):5d} sentences  "
            f"{len({u.spk.spk for u in utts}):2d} speakers  {hours:6.3f} h"
        )

    def dist(key):
        c = Counter(key(u) for u in all_utts)
        return " ".join(f"{k}={c[k]}" for k in sorted(c))

    total_h = sum(frames.values()) / fs / 3600
    lines += [
        f"total     {len(all_utts):5d} utts  {total_h:.3f} h  {len({u.spk.spk for u in all_utts})} speakers",
        f"gender:  {dist(lambda u: u.spk.gender)}",
        f"age:     {dist(lambda u: u.spk.age)}",
        f"emotion: {dist(lambda u: u.emo)}",
        f"quality: {dist(lambda u: DEGRADATIONS[u.degrade].quality)}",
        f"degrade: {dist(lambda u: u.degrade)}",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data_dir", default="data", help="where the Kaldi data dirs go")
    parser.add_argument("--db_dir", default="db", help="where the wavs go")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--num_train", type=int, default=12800)
    parser.add_argument("--num_train_sentences", type=int, default=0,
                        help="distinct train sentences; 0: three quarters of --num_train")  # fmt: skip
    parser.add_argument("--num_dev", type=int, default=160)
    parser.add_argument("--num_test", type=int, default=120)
    parser.add_argument("--num_test_hard", type=int, default=80)
    parser.add_argument("--degrade_prob", type=float, default=0.22, help="degraded share of train and dev")
    parser.add_argument("--test_degrade_prob", type=float, default=0.05, help="degraded share of test sets")
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=min(8, os.cpu_count() or 2), help="parallel processes")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    setup_logging("INFO")
    for name in ("num_train", "num_dev", "num_test", "num_test_hard"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.nj < 1:
        parser.error("--nj must be at least 1")
    try:
        check_espeak()
    except RuntimeError as e:
        raise SystemExit(f"synthesize.py: {e}") from None
    start = time.time()
    db_dir = os.path.abspath(args.db_dir)
    plan = plan_corpus(args)
    prompts = choose_prompts(plan, args.seed)
    all_utts = [u for utts in plan.values() for u in utts]
    paths = {u.utt: u.wav_path(db_dir, args.seed, args.fs) for u in all_utts}
    logger.info("%d utterances planned (%s); wavs in %s", len(all_utts),
                ", ".join(f"{k} {len(v)}" for k, v in plan.items()), db_dir)  # fmt: skip
    jobs = [(u.utt, paths[u.utt], u.spec(args.seed, args.fs)) for u in all_utts]
    jobs.sort(key=lambda j: -len(j[2]["text"]))  # long ones first: better load balance
    frames = synthesize_all(jobs, args.nj)
    write_data_dirs(plan, prompts, paths, frames, args.data_dir, args.fs)
    logger.info(
        "data dirs written to %s/{%s}\n%s", args.data_dir, ",".join(SETS), summarize(plan, frames, args.fs)
    )
    logger.info("done in %.1f s", time.time() - start)


if __name__ == "__main__":
    main()
