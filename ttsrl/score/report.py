"""The report page ``exp/report/index.html``: what every model scored, and how it sounds.

One self-contained folder (zip it and send it): ``index.html`` with inline CSS, inline SVG and
no script, the plots as PNG (matplotlib, Agg) and the example audio copied into ``audio/``,
every path relative; nothing is fetched from the network. Per test set, top to bottom:

* **tables** of ``results.json``, one per group of metrics (intelligibility; voice, prosody and
  quality; emotion; cost) so that none scrolls sideways, the model column sticky. Rows: the
  references (``ground_truth``, ``resynth``: the ground-truth tokens through flow and vocoder),
  ``base``, then the methods in the order of the design card (DPO, SpeechAlign, RAFT, CoH,
  GRPO, DiffRO, ARDM-DPO, DMO, E2E; iterations in order, the last one under the method's name).
  A header says whether lower (↓) or higher (↑) is better and explains the metric (hover); the
  best method value of a column is highlighted (references excluded); every cell gives the 95 %
  confidence interval of the mean over utterances (``± x``, from the model's ``per_utt.tsv``:
  1.96 sd / sqrt(n)) and the change from ``base`` (green: better, red: worse);
* **trade-off scatters** (inline SVG, a point per model, tooltips): CER vs KL to the base LM
  (how far alignment moved the model for what gain; base at KL 0) and SIM vs CER;
* ``<set>_metrics.png``: a dot per model with its confidence interval, one panel per headline
  metric, axes zoomed on the values (not from 0), a dashed line at base, the values beside;
* ``<set>_cer.png``: per-utterance CER of every model (boxplot);
* ``--num_examples`` utterances spread evenly over the sorted ids (the same ones every run),
  each a row of ``<audio controls>`` players: prompt, ground truth, then every model, with the
  text, the prompt's text and, under a model, its CER and what the judge heard;
* ``<set>_mels.png``: log-mel spectrograms of the first example, ground truth above every model;
* what was missing, collapsed (``<details>``) and grouped (one line per model and cause).

Then, for every test set together: **the models behind the numbers** (the ``metrics.json`` of
the speech tokenizer, the reward model with its Spearman correlation to the judge, the judge
and the emotion judge) and **training curves** (``training_curves.png``: training and validation
loss from the ``train.log`` of every trained model, aligned ones included).

Where things are found (the layout of ``egs/TEMPLATE/rl1/rl.sh``); the test sets and models are
those of ``results.json``:

=================  ==========================================================================
texts, prompts     ``<data_dir>/<set>/{text,prompt.scp,prompt_text}``
ground truth       audio ``<data_dir>/<set>/wav.scp`` (+ ``segments``);
                   scores ``<exp_dir>/ground_truth/<set>/score/per_utt.tsv``
a model            audio ``<exp_dir>/<model>/decode/<set>/wav.scp`` (stage 8);
                   scores ``<exp_dir>/<model>/decode/<set>/score/per_utt.tsv`` (the main judge;
                   the second opinions in ``score_<judge>/`` are not plotted)
side models        ``<exp_dir>/{tokenizer,reward,judge,emotion_judge}/metrics.json``
training logs      ``<exp_dir>/{tokenizer,base/lm,base/flow,base/vocoder,reward,judge}/train.log``
                   and ``<exp_dir>/<model>/lm/train.log`` of every aligned model
=================  ==========================================================================

Audio is decoded (pipes, segments, any format soundfile reads) and rewritten as 16-bit WAV at
its own sample rate, so every browser plays it. Anything missing (a data dir, a wav.scp, an
utterance, an unreadable file, a ``per_utt.tsv``) is logged and listed on the page; it never
stops the report.

Usage::

    from ttsrl.score.report import write_html_report

    report = write_html_report("exp/results.json", "exp/report", exp_dir="exp", data_dir="data")
    report.problems  # what was missing, also in the page
"""

from __future__ import annotations

import datetime
import html
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ttsrl.data.audio import load_audio, write_wav
from ttsrl.data.datadir import DataDir, DataDirError, read_kv
from ttsrl.score.report_plots import (
    ScatterPoint,
    model_colors,
    plot_cer_boxes,
    plot_mels,
    plot_metric_dots,
    plot_train_curves,
    svg_scatter,
)
from ttsrl.score.results import (
    COUNT_METRICS,
    GROUND_TRUTH,
    METRICS,
    load_results,
    locked,
    metric_order,
    split_metric,
)
from ttsrl.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

PROMPT = "prompt"  # the role of the prompt column among the players
BASE = "base"
#: Rows that are not methods: the test set's audio, and its golden tokens through flow and vocoder.
REFERENCES = (GROUND_TRUTH, "resynth")
#: Method families in the order of the design card; a tag is a family, ``<family>_iter<k>`` or ``<family>_<variant>``.
METHOD_FAMILIES = ("dpo", "speechalign", "raft", "bon", "coh", "grpo", "diffro", "ardm_dpo", "ardm", "dmo", "e2e")
Z95 = 1.96  # normal quantile of a two-sided 95 % interval
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.+-]")
_ITER_RE = re.compile(r"_iter(\d+)")


@dataclass(frozen=True)
class MetricInfo:
    """A metric's table group, which way is better (-1 lower, +1 higher, 0 neither) and its meaning."""

    group: str
    better: int
    help: str


GROUPS = ("Intelligibility", "Voice, prosody and quality", "Emotion", "Cost and coverage")
METRIC_INFO: dict[str, MetricInfo] = {
    "wer": MetricInfo(GROUPS[0], -1, "word error rate of the judge's transcript against the text, the mean of "
                                     "per-utterance rates (Seed-TTS-Eval)"),
    "wer_corpus": MetricInfo(GROUPS[0], -1, "total word errors / total reference words"),
    "cer": MetricInfo(GROUPS[0], -1, "character error rate, the mean of per-utterance rates"),
    "cer_corpus": MetricInfo(GROUPS[0], -1, "total character errors / total reference characters"),
    "per": MetricInfo(GROUPS[0], -1, "phone error rate of the judge's phones"),
    "nll": MetricInfo(GROUPS[0], -1, "CTC negative log-likelihood of the text under the judge, per character "
                                     "(ARDM-DPO's robustness metric)"),
    "sim": MetricInfo(GROUPS[1], +1, "speaker similarity: cosine of speaker embeddings of the output and the prompt"),
    "f0v": MetricInfo(GROUPS[1], 0, "variance of ln F0 over voiced frames (expressiveness): compare with the ground "
                                    "truth, neither direction is better"),
    "dnsmos": MetricInfo(GROUPS[1], +1, "DNSMOS overall: predicted MOS 1-5"),
    "dnsmos_sig": MetricInfo(GROUPS[1], +1, "DNSMOS speech signal quality"),
    "dnsmos_bak": MetricInfo(GROUPS[1], +1, "DNSMOS background noise (higher: less noise)"),
    "dnsmos_p808": MetricInfo(GROUPS[1], +1, "DNSMOS P.808 MOS"),
    "emo_acc": MetricInfo(GROUPS[2], +1, "share of utterances the audio emotion judge gives the test set's emotion"),
    "emo_share": MetricInfo(GROUPS[2], 0, "share of utterances judged as this emotion (emotion control moves it "
                                          "toward its target)"),
    "cer_best_of_n": MetricInfo(GROUPS[0], -1, "CER of the best of N base candidates by the method's reward "
                                               "(the headroom's end; read by the tokenizer's CTC head)"),
    "headroom_captured": MetricInfo(GROUPS[0], +1, "(CER_base - CER_method) / (CER_base - CER_best_of_N): the share "
                                                   "of the best-of-N headroom the method captured"),
    "kl": MetricInfo(GROUPS[3], -1, "token-average KL(aligned LM || base LM) on the test texts: how far alignment "
                                    "moved the model (a cost)"),
    "train_min": MetricInfo(GROUPS[3], -1, "alignment training time in minutes (earlier iterations included)"),
    "n_utts": MetricInfo(GROUPS[3], 0, "utterances scored"),
    "n_missing": MetricInfo(GROUPS[3], 0, "utterances without usable audio"),
}
#: Metrics of the dot plots (the tables have all of them).
HEADLINE = ("wer", "cer", "nll", "sim", "f0v", "dnsmos", "emo_acc", "kl", "train_min")
#: per_utt.tsv column of a metric whose results.json value is the mean over utterances (emo_ok: 100 or 0).
PER_UTT_COLUMNS = {"wer": "wer", "cer": "cer", "sim": "sim", "f0v": "f0v", "nll": "nll", "dnsmos": "dnsmos",
                   "dnsmos_sig": "dnsmos_sig", "dnsmos_bak": "dnsmos_bak", "dnsmos_p808": "dnsmos_p808",
                   "emo_acc": "emo_ok"}  # fmt: skip
#: The models beside the aligned ones: (title, folder under exp_dir).
SIDE_MODELS = (("speech tokenizer", "tokenizer"), ("reward model", "reward"), ("judge (CTC ASR)", "judge"),
               ("emotion judge", "emotion_judge"))  # fmt: skip
TRAIN_RUNS = (("tokenizer", "tokenizer"), ("base LM", "base/lm"), ("flow", "base/flow"), ("vocoder", "base/vocoder"),
              ("reward model", "reward"), ("judge", "judge"))  # fmt: skip
#: Meanings of metrics.json keys shown in the side-model tables.
KEY_HELP = {
    "spearman_vs_judge": "Spearman of the reward vs the judge's CER over sampled candidates: negative is good "
                         "(a higher reward goes with fewer errors)",
    "spearman_vs_judge_p": "p-value of that correlation",
    "spearman_vs_judge_candidates": "candidates it is computed over",
    "ctc_cer": "CER of the CTC head's greedy transcript (%)",
    "codebook_perplexity": "exp of the entropy of code usage (higher: more codes in use)",
    "codebook_usage": "share of the codebook used",
    "token_rate": "speech tokens per second",
    "text_rank_acc": "share of utterances whose golden tokens outscore a corrupted copy",
    "quality_corr": "Pearson correlation of the quality head with the labels",
    "dev_cer": "the judge's CER on ground-truth dev audio (%): the floor of every CER in this report",
}


def metric_info(name: str) -> MetricInfo:
    return METRIC_INFO.get(split_metric(name)[0], MetricInfo(GROUPS[3], 0, ""))


def report_model_order(tags: Sequence[str]) -> list[str]:
    """References, then ``base`` (each followed by its ``_dmo`` row: the same tokens through the DMO
    student), then the methods in :data:`METHOD_FAMILIES` order (a family's iterations in order,
    then the family's own tag, then its variants); unknown tags last, sorted."""
    head = [t for ref in (*REFERENCES, BASE) for t in (ref, f"{ref}_dmo") if t in tags]
    by_length = sorted(METHOD_FAMILIES, key=len, reverse=True)

    def key(tag: str) -> tuple:
        fam = next((f for f in by_length if tag == f or tag.startswith(f + "_")), None)
        rank = METHOD_FAMILIES.index(fam) if fam else len(METHOD_FAMILIES)
        fam = fam or tag
        suffix = tag[len(fam):]
        it = _ITER_RE.fullmatch(suffix)
        sub = (0, int(it.group(1)), "") if it else (1, 0, "") if not suffix else (2, 0, suffix)
        return rank, fam, sub

    return head + sorted((t for t in tags if t not in head), key=key)


@dataclass
class Clip:
    """One player: ``path`` relative to the report folder, or ``None`` and why."""

    path: str | None
    missing: str | None = None


@dataclass
class Example:
    """One utterance's row of players: ``clips`` by role (prompt, ground_truth, models)."""

    utt: str
    text: str
    prompt_text: str | None
    clips: dict[str, Clip] = field(default_factory=dict)
    scores: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> its per_utt.tsv row


@dataclass
class SetReport:
    """What the page shows of one test set."""

    name: str
    models: list[str]  # rows of the tables, in report_model_order
    metrics: dict[str, dict[str, float | int]]  # model -> metric -> value
    cis: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> metric -> 95 % CI half-width
    bars_png: str | None = None  # the dot plots (named as before: <set>_metrics.png)
    cer_png: str | None = None
    mels_png: str | None = None
    scatters: list[str] = field(default_factory=list)  # inline SVG
    examples: list[Example] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    clip_problems: list[tuple[str, str, str, str]] = field(default_factory=list)  # (role, kind, utt, why)


@dataclass
class SideModel:
    """A model behind the numbers: its title, folder and ``metrics.json`` (None when absent)."""

    title: str
    path: str
    metrics: dict | None


@dataclass
class Report:
    index: str
    sets: list[SetReport]
    notes: list[str] = field(default_factory=list)  # problems that belong to no test set
    side_models: list[SideModel] = field(default_factory=list)
    curves_png: str | None = None

    @property
    def problems(self) -> list[str]:
        return self.notes + [f"{s.name}: {p}" for s in self.sets for p in s.problems]


# -- where stage 9 puts things ----------------------------------------------------------------
def per_utt_path(exp_dir: str, model: str, test_set: str) -> str:
    """The main judge's ``per_utt.tsv`` of ``model`` on ``test_set``."""
    if model == GROUND_TRUTH:
        return os.path.join(exp_dir, GROUND_TRUTH, test_set, "score", "per_utt.tsv")
    return os.path.join(exp_dir, model, "decode", test_set, "score", "per_utt.tsv")


def decode_wav_scp(exp_dir: str, model: str, test_set: str) -> str:
    return os.path.join(exp_dir, model, "decode", test_set, "wav.scp")


def read_per_utt(path: str) -> dict[str, dict[str, str]]:
    """Rows of a ``per_utt.tsv`` by utterance id (every value a string; empty when absent)."""
    rows: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if "utt" not in header:
            raise ValueError(f"{path}: no 'utt' column in the header")
        for line in f:
            if line.strip():
                row = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
                rows[row["utt"]] = row
    return rows


def per_utt_values(rows: Mapping[str, Mapping[str, str]], column: str) -> list[float]:
    """The finite values of ``column`` over the rows whose status is ok."""
    out = []
    for row in rows.values():
        if row.get("status", "ok") != "ok" or not row.get(column):
            continue
        try:
            value = float(row[column])
        except ValueError:
            continue
        if math.isfinite(value):
            out.append(value)
    return out


def confidence_intervals(rows: Mapping[str, Mapping[str, str]]) -> dict[str, float]:
    """Half-width of the normal 95 % interval of the mean, ``1.96 sd / sqrt(n)``, of every metric of
    :data:`PER_UTT_COLUMNS` that ``rows`` has for at least 2 utterances."""
    out = {}
    for name, column in PER_UTT_COLUMNS.items():
        values = per_utt_values(rows, column)
        n = len(values)
        if n >= 2:
            mean = sum(values) / n
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
            out[name] = Z95 * sd / math.sqrt(n)
    return out


def read_train_log(path: str) -> dict[str, list[tuple[int, float]]]:
    """``{"train": [(step, loss)], "valid": [(step, loss)]}`` from a Trainer's ``train.log``
    (its ``epoch E step S batch B: loss ...`` and ``validation at step S (epoch E): loss ...`` lines)."""
    curves: dict[str, list[tuple[int, float]]] = {"train": [], "valid": []}
    train_re = re.compile(r"epoch \d+ step (\d+) batch \d+: (.*)")
    valid_re = re.compile(r"validation at step (\d+) \(epoch \d+\): (.*)")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            for kind, rx in (("train", train_re), ("valid", valid_re)):
                m = rx.search(line)
                if m:
                    loss = _stat(m.group(2), "loss")
                    if loss is not None:
                        curves[kind].append((int(m.group(1)), loss))
                    break
    return curves


def _stat(text: str, key: str) -> float | None:
    """The value after ``key`` in a ``k v k v ...`` stats string, or None."""
    tokens = text.split()
    for k, v in zip(tokens, tokens[1:], strict=False):
        if k == key:
            try:
                x = float(v.rstrip(";,"))
            except ValueError:
                return None
            return x if math.isfinite(x) else None
    return None


def pick_examples(utts: Sequence[str], n: int) -> list[str]:
    """``n`` ids spread evenly over ``utts`` (first one included), the same on every run."""
    utts = list(utts)
    if n <= 0 or not utts:
        return []
    if n >= len(utts):
        return utts
    return [utts[(i * len(utts)) // n] for i in range(n)]


def copy_clip(spec: str, segment: tuple[float, float] | None, dest: str) -> str | None:
    """Decode a wav.scp entry and write it to ``dest`` as 16-bit WAV; returns why not, or None."""
    try:
        wav, sr = load_audio(spec, segment=segment)
        if wav.size == 0:
            return f"empty audio: {spec}"
        write_wav(dest, wav, sr)
    except (ValueError, OSError) as e:  # AudioError is a ValueError
        return str(e)
    return None


# -- gathering --------------------------------------------------------------------------------
def _problem(report: SetReport, message: str) -> None:
    logger.warning("report %s: %s", report.name, message)
    report.problems.append(message)


def _load_data_dir(path: str, report: SetReport) -> DataDir | None:
    if not os.path.isdir(path):
        _problem(report, f"{path}: data dir not found (no texts, prompts nor ground-truth audio)")
        return None
    try:
        return DataDir.load(path)
    except DataDirError as e:
        _problem(report, f"{path}: unreadable data dir ({e})")
        return None


def _gather_clips(report: SetReport, ex: Example, rel_dir: str, html_dir: str, data: DataDir | None,
                  prompts: Mapping[str, str], sources: Mapping[str, Mapping[str, str] | None]) -> None:  # fmt: skip
    """Copy the prompt, ground truth and model audio of one example into ``html_dir/rel_dir``."""
    utt = ex.utt
    # (role, (spec, segment) or None, why it is missing, whether that is news for this utterance:
    # a missing data dir or decode wav.scp is reported once for the set)
    wanted: list[tuple[str, tuple | None, str, bool]] = []
    if data is None:
        wanted += [(PROMPT, None, "no data dir", False), (GROUND_TRUTH, None, "no data dir", False)]
    else:
        wanted.append((PROMPT, (prompts[utt], None) if utt in prompts else None, "not in prompt.scp", bool(prompts)))
        try:
            wanted.append((GROUND_TRUTH, data.audio_spec(utt), "", True))
        except KeyError:
            wanted.append((GROUND_TRUTH, None, "not in wav.scp/segments", True))
    for model, scp in sources.items():
        if scp is None:
            wanted.append((model, None, "no decode wav.scp", False))
        else:
            wanted.append((model, (scp[utt], None) if utt in scp else None, "not in its decode wav.scp", True))
    for role, spec, why, news in wanted:
        if spec is None:
            ex.clips[role] = Clip(None, why)
            if news:
                _problem(report, f"{utt}: no {role} audio ({why})")
                report.clip_problems.append((role, "missing", utt, why))
            continue
        rel = f"{rel_dir}/{role}.wav"
        err = copy_clip(spec[0], spec[1], os.path.join(html_dir, rel))
        ex.clips[role] = Clip(None if err else rel, err)
        if err:
            _problem(report, f"{utt}: {role} audio unreadable ({err})")
            report.clip_problems.append((role, "unreadable", utt, err))


def _scatters(s: SetReport, colors: Mapping[str, str]) -> list[str]:
    """The trade-off scatters of a set: CER (or WER) vs KL to base, and SIM vs CER."""
    err = next((n for n in ("cer", "wer") if any(n in s.metrics[m] for m in s.models)), None)
    if err is None:
        return []
    title = METRICS[err][0]
    out = []
    pts = []
    for m in s.models:
        row = s.metrics[m]
        kl = 0.0 if m == BASE else row.get("kl")  # the base LM is the reference of every KL
        if kl is not None and err in row:
            pts.append(ScatterPoint(m, float(kl), float(row[err]), None, s.cis.get(m, {}).get(err), colors[m]))
    if len(pts) >= 2:
        out.append(svg_scatter(pts, "KL to the base LM", title, f"{s.name}: {err.upper()} vs KL (cost of alignment)",
                               better="lower left", x_fmt="{:.4f}", y_fmt="{:.2f}"))  # fmt: skip
    pts = [ScatterPoint(m, float(s.metrics[m][err]), float(s.metrics[m]["sim"]), s.cis.get(m, {}).get(err),
                        s.cis.get(m, {}).get("sim"), colors[m])
           for m in s.models if err in s.metrics[m] and "sim" in s.metrics[m]]  # fmt: skip
    if len(pts) >= 2:
        out.append(svg_scatter(pts, title, "SIM", f"{s.name}: SIM vs {err.upper()}", better="upper left",
                               x_fmt="{:.2f}", y_fmt="{:.3f}"))  # fmt: skip
    return out


def build_set_report(test_set: str, results: Mapping[str, Mapping[str, Mapping[str, float | int]]],
                     exp_dir: str, data_dir: str, html_dir: str, num_examples: int) -> SetReport:  # fmt: skip
    """Gather one test set: copy its example audio into ``html_dir/audio/<set>/`` and draw its plots."""
    models = report_model_order([m for m in results if test_set in results[m]])
    report = SetReport(test_set, models, {m: dict(results[m][test_set]) for m in models})
    data = _load_data_dir(os.path.join(data_dir, test_set), report)
    colors = model_colors(models)

    per_utt: dict[str, dict[str, dict[str, str]]] = {}
    for model in models:
        path = per_utt_path(exp_dir, model, test_set)
        if not os.path.isfile(path):
            _problem(report, f"{model}: no per-utterance scores ({path})")
            continue
        try:
            per_utt[model] = read_per_utt(path)
        except (ValueError, OSError) as e:
            _problem(report, f"{model}: unreadable per-utterance scores ({e})")
    report.cis = {m: confidence_intervals(rows) for m, rows in per_utt.items()}

    os.makedirs(html_dir, exist_ok=True)
    report.scatters = _scatters(report, colors)
    dots = os.path.join(html_dir, f"{test_set}_metrics.png")
    names = [n for n in metric_order({k for m in models for k in report.metrics[m]}) if split_metric(n)[0] in HEADLINE]
    titles = {n: _title(n) + {-1: "  (lower is better)", 1: "  (higher is better)"}.get(metric_info(n).better, "")
              for n in names}  # fmt: skip
    fmt = {n: METRICS[split_metric(n)[0]][1] for n in names}
    if plot_metric_dots(dots, test_set, models, report.metrics, report.cis, names, colors, titles, fmt, BASE):
        report.bars_png = os.path.basename(dots)
    cer = os.path.join(html_dir, f"{test_set}_cer.png")
    cers = {m: per_utt_values(per_utt[m], "cer") for m in models if m in per_utt}
    if plot_cer_boxes(cer, test_set, cers, colors):
        report.cer_png = os.path.basename(cer)
    elif per_utt:
        _problem(report, "no per-utterance CER in any per_utt.tsv: no CER plot")

    # the utterances: the data dir's, else those scored
    if data is not None and data.text:
        utts, texts = data.utts, data.text
    else:
        texts = {u: r.get("ref", "") for rows in per_utt.values() for u, r in rows.items()}
        utts = sorted(texts)
    prompts = data.extra.get("prompt.scp", {}) if data is not None else {}
    prompt_texts = data.extra.get("prompt_text", {}) if data is not None else {}
    if data is not None and not prompts:
        _problem(report, f"{data.path}: no prompt.scp (no prompt players)")

    sources: dict[str, dict[str, str] | None] = {}  # model -> utt -> wav.scp value
    for model in models:
        if model != GROUND_TRUTH:
            scp = decode_wav_scp(exp_dir, model, test_set)
            try:
                sources[model] = read_kv(scp)
            except (ValueError, OSError) as e:
                sources[model] = None
                _problem(report, f"{model}: no decoded audio ({e})")

    audio_dir = os.path.join(html_dir, "audio", test_set)
    shutil.rmtree(audio_dir, ignore_errors=True)  # a rerun leaves no stale clip behind
    for i, utt in enumerate(pick_examples(utts, num_examples)):
        ex = Example(utt, texts.get(utt, ""), prompt_texts.get(utt))
        _gather_clips(report, ex, f"audio/{test_set}/{i:02d}_{_UNSAFE_RE.sub('_', utt)}", html_dir, data, prompts,
                      sources)  # fmt: skip
        ex.scores = {m: rows[utt] for m, rows in per_utt.items() if utt in rows}
        report.examples.append(ex)
    if report.examples:  # the spectrograms of the first example, from the copied clips
        ex = report.examples[0]
        clips = {role: os.path.join(html_dir, c.path) for role, c in ex.clips.items() if role != PROMPT and c.path}
        mels = os.path.join(html_dir, f"{test_set}_mels.png")
        if plot_mels(mels, f"{test_set} / {ex.utt}: {ex.text}", clips):
            report.mels_png = os.path.basename(mels)
    if not utts:
        _problem(report, "no utterances (no data dir text and no per_utt.tsv): no examples")
    return report


def gather_side_models(exp_dir: str) -> list[SideModel]:
    """The ``metrics.json`` of every model of :data:`SIDE_MODELS` (None when absent or unreadable)."""
    out = []
    for title, sub in SIDE_MODELS:
        path = os.path.join(exp_dir, sub, "metrics.json")
        metrics = None
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    metrics = json.load(f)
                if not isinstance(metrics, dict):
                    metrics = None
            except (OSError, ValueError) as e:
                logger.warning("report: %s: unreadable (%s)", path, e)
        out.append(SideModel(title, os.path.join(exp_dir, sub), metrics))
    return out


def gather_train_curves(exp_dir: str, models: Sequence[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Loss curves of :data:`TRAIN_RUNS` and of every aligned model's LM (``<model>/lm``), by name;
    a run whose folder is a link to one already read (``dpo`` -> ``dpo_iter2``) is read once."""
    runs = [*TRAIN_RUNS, *((f"{m} (aligned LM)", f"{m}/lm") for m in report_model_order(models)
                           if m not in (*REFERENCES, BASE))]  # fmt: skip
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    seen: set[str] = set()
    for name, sub in runs:
        folder = os.path.realpath(os.path.join(exp_dir, sub))
        log = next((p for p in (os.path.join(folder, "train.log"), os.path.join(folder, "log", "train.log"))
                    if os.path.isfile(p)), None)  # fmt: skip
        if log is None or folder in seen:
            continue
        seen.add(folder)
        try:
            out[name] = read_train_log(log)
        except OSError as e:
            logger.warning("report: %s: unreadable (%s)", log, e)
    return out


# -- the page ---------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1500px; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccc; margin-top: 2em; } h3 { margin: 1.2em 0 0.3em; }
.meta, .legend { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; }
th, td { border: 1px solid #d4d4d4; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
.scroll { overflow-x: auto; }
th.model, td.model { position: sticky; left: 0; background: #fff; z-index: 1; text-align: left; white-space: nowrap; }
th.model { background: #f2f2f2; }
table.metrics th { font-size: 0.85em; cursor: help; }
table.metrics td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.metrics td.model { font-weight: 600; }
table.metrics tr.reference td { color: #555; background: #fafafa; }
table.metrics tr.reference td.model { font-style: italic; }
table.metrics td.best { background: #e3f4e1; font-weight: 700; }
.ci { color: #777; font-size: 0.8em; margin-left: 0.2em; }
.delta { display: block; font-size: 0.75em; }
.delta.better { color: #1a7f37; } .delta.worse { color: #c62828; } .delta.neutral { color: #777; }
.dir { color: #1565c0; }
.swatch { display: inline-block; width: 0.75em; height: 0.75em; border-radius: 50%; margin-right: 0.4em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0.3em 0; }
svg.tradeoff { border: 1px solid #ddd; background: #fff; font-family: system-ui, sans-serif; }
svg.tradeoff .grid { stroke: #eee; } svg.tradeoff .frame { fill: none; stroke: #999; }
svg.tradeoff .tick { font-size: 10px; fill: #555; } svg.tradeoff .axis { font-size: 12px; fill: #333; }
svg.tradeoff .svg-title { font-size: 13px; font-weight: 600; } svg.tradeoff .label { font-size: 10.5px; fill: #333; }
svg.tradeoff .better { font-size: 11px; fill: #1a7f37; } svg.tradeoff .err { stroke-width: 1.5; }
table.examples td { min-width: 13em; }
table.examples td.model { min-width: 10em; max-width: 16em; white-space: normal; }
.utt { font-family: monospace; font-size: 0.85em; color: #555; }
.text { margin: 0.3em 0; }
.score, .hyp { font-size: 0.8em; color: #555; }
.missing { color: #a00; font-size: 0.85em; }
details.problems { margin: 1em 0; color: #8a1c1c; font-size: 0.9em; }
details.problems summary { cursor: pointer; }
table.kv td:first-child { font-family: monospace; } table.kv td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td.help { color: #555; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
audio { width: 13em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _title(name: str) -> str:
    base, qualifier = split_metric(name)
    title = METRICS[base][0]
    return f"{title} [{qualifier}]" if qualifier else title


def _cell(name: str, value: float | int | None) -> str:
    return "-" if value is None else METRICS[split_metric(name)[0]][1].format(value)


def _delta(name: str, value: float, base: float) -> str:
    """``<span class="delta ...">`` of ``value - base`` coloured by the metric's better direction."""
    d = value - base
    fmt = METRICS[split_metric(name)[0]][1]
    text = ("+" if d > 0 else "\u2212" if d < 0 else "\u00b1") + fmt.format(abs(d))
    better = metric_info(name).better
    kind = "neutral" if better == 0 or d == 0 else ("better" if d * better > 0 else "worse")
    return f'<span class="delta {kind}" title="change from {BASE}">{text}</span>'


def _best(s: SetReport, name: str) -> set[str]:
    """The method rows (references excluded) with the best value of ``name`` (ties: all)."""
    better = metric_info(name).better
    have = {m: s.metrics[m][name] for m in s.models if m not in REFERENCES and name in s.metrics[m]}
    if better == 0 or len(have) < 2:
        return set()
    best = (min if better < 0 else max)(have.values())
    return {m for m, v in have.items() if v == best}


def _metrics_tables(s: SetReport, colors: Mapping[str, str]) -> list[str]:
    names = metric_order({k for m in s.models for k in s.metrics[m]})
    base_row = s.metrics.get(BASE, {})
    out = []
    for group in GROUPS:
        cols = [n for n in names if metric_info(n).group == group]
        if not cols:
            continue
        best = {n: _best(s, n) for n in cols}
        head = ['<th class="model">model</th>']
        for n in cols:
            info = metric_info(n)
            arrow = {-1: " <span class=\"dir\">\u2193</span>", 1: " <span class=\"dir\">\u2191</span>"}.get(info.better, "")
            why = {-1: "lower is better", 1: "higher is better"}.get(info.better, "no better direction")
            head.append(f'<th title="{_e(info.help)} ({why})">{_e(_title(n))}{arrow}</th>')
        rows = []
        for m in s.models:
            cells = []
            for n in cols:
                v = s.metrics[m].get(n)
                if v is None:
                    cells.append("<td>-</td>")
                    continue
                ci = s.cis.get(m, {}).get(n)
                parts = [_e(_cell(n, v))]
                if ci is not None:
                    parts.append(f'<span class="ci" title="95 % confidence interval">\u00b1{_e(_cell(n, ci))}</span>')
                if m != BASE and n in base_row and n not in COUNT_METRICS:
                    parts.append(_delta(n, float(v), float(base_row[n])))
                cls = ' class="best"' if m in best[n] else ""
                cells.append(f"<td{cls}>{''.join(parts)}</td>")
            row_cls = ' class="reference"' if m in REFERENCES else ""
            swatch = f'<span class="swatch" style="background:{colors[m]}"></span>'
            rows.append(f'<tr{row_cls}><td class="model">{swatch}{_e(m)}</td>{"".join(cells)}</tr>')
        out += [f"<h3>{_e(group)}</h3>", '<div class="scroll">', f'<table class="metrics" data-group="{_e(group)}">',
                "<tr>" + "".join(head) + "</tr>", *rows, "</table>", "</div>"]  # fmt: skip
    return out


def _player(clip: Clip | None) -> str:
    if clip is None or clip.path is None:
        return f'<div class="missing">missing: {_e(clip.missing if clip else "not gathered")}</div>'
    return f'<audio controls preload="metadata" src="{_e(clip.path)}"></audio>'


def _examples_table(s: SetReport) -> list[str]:
    roles = [PROMPT, GROUND_TRUTH] + [m for m in s.models if m != GROUND_TRUTH]
    out = ['<div class="scroll"><table class="examples">',
           '<tr><th class="model">utterance</th>' + "".join(f"<th>{_e(r)}</th>" for r in roles) + "</tr>"]  # fmt: skip
    for ex in s.examples:
        cells = [f'<td class="model"><div class="utt">{_e(ex.utt)}</div><div class="text">{_e(ex.text)}</div></td>']
        for role in roles:
            parts = [_player(ex.clips.get(role))]
            if role == PROMPT and ex.prompt_text:
                parts.append(f'<div class="text">{_e(ex.prompt_text)}</div>')
            row = ex.scores.get(role)
            cer = per_utt_values({ex.utt: row}, "cer") if row is not None else []
            if cer:
                parts.append(f'<div class="score">CER {cer[0]:.1f} %</div>')
            if row is not None and row.get("hyp"):
                parts.append(f'<div class="hyp">judge heard: {_e(row["hyp"])}</div>')
            elif row is not None and row.get("status", "ok") != "ok":
                parts.append(f'<div class="missing">scorer: {_e(row["status"])} {_e(row.get("note", ""))}</div>')
            cells.append("<td>" + "".join(parts) + "</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return out


def _problems_block(s: SetReport) -> list[str]:
    """Every problem of a set, collapsed; clip problems as one line per (model, cause)."""
    clip_msgs = {f"{utt}: no {role} audio ({why})" for role, kind, utt, why in s.clip_problems if kind == "missing"}
    clip_msgs |= {f"{utt}: {role} audio unreadable ({why})" for role, kind, utt, why in s.clip_problems
                  if kind == "unreadable"}  # fmt: skip
    lines = [p for p in s.problems if p not in clip_msgs]
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for role, kind, utt, why in s.clip_problems:
        groups.setdefault((role, kind), []).append((utt, why))
    n_ex = len(s.examples)
    for (role, kind), items in groups.items():
        shown = "; ".join(f"{utt}: {why}" for utt, why in items[:2]) + (" ..." if len(items) > 2 else "")
        lines.append(f"{role}: {len(items)} of {n_ex} example clip(s) {kind} ({shown})")
    if not lines:
        return []
    return [f'<details class="problems"><summary>{len(s.problems)} input(s) missing or unreadable '
            f"({len(lines)} cause(s)): show</summary>", "<ul>", *(f"<li>{_e(p)}</li>" for p in lines), "</ul>",
            "</details>"]  # fmt: skip


def _fmt_value(v: object) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "null"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _side_models(models: Sequence[SideModel]) -> list[str]:
    out = ['<h2 id="models">The models behind the numbers</h2>',
           '<p class="legend">The <code>metrics.json</code> of the models that tokenize, reward and judge (dev '
           "set unless a key names another set).</p>", '<div class="figures">']  # fmt: skip
    for sm in models:
        out.append(f"<figure><h3>{_e(sm.title)}</h3>")
        if sm.metrics is None:
            out.append(f'<p class="legend">no metrics.json in {_e(sm.path)}</p></figure>')
            continue
        out.append('<table class="kv"><tr><th>key</th><th>value</th><th>meaning</th></tr>')
        for k in sorted(sm.metrics):
            v = sm.metrics[k]
            out.append(f'<tr><td>{_e(k)}</td><td class="num">{_e(_fmt_value(v))}</td>'
                       f'<td class="help">{_e(KEY_HELP.get(k, ""))}</td></tr>')  # fmt: skip
        out.append("</table></figure>")
    out.append("</div>")
    return out


def render_html(sets: Sequence[SetReport], command: str | None = None, date: str | None = None,
                notes: Sequence[str] = (), side_models: Sequence[SideModel] = (),
                curves_png: str | None = None) -> str:  # fmt: skip
    """The page (every text escaped; every path relative to the report folder)."""
    date = date or datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>ttsrl report</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           "<h1>ttsrl report</h1>", f'<p class="meta">{_e(date)}'
           + (f" &middot; <code>{_e(command)}</code>" if command else "") + "</p>"]  # fmt: skip
    if notes:
        out += ['<details class="problems" open><summary>notes</summary><ul>', *(f"<li>{_e(n)}</li>" for n in notes),
                "</ul></details>"]  # fmt: skip
    links = [f'<a href="#set-{_e(s.name)}">{_e(s.name)}</a>' for s in sets]
    if side_models:
        links.append('<a href="#models">models behind the numbers</a>')
    if curves_png:
        links.append('<a href="#training">training curves</a>')
    out.append("<p>" + (" &middot; ".join(links) if links else "") + ("" if sets else " (no results yet)") + "</p>")
    if sets:
        out.append('<p class="legend">How to read the tables: \u2193 lower is better, \u2191 higher is better '
                   "(hover a column for its meaning); green: the best method of the column (the references "
                   f"{' and '.join(REFERENCES)} are not methods); \u00b1: 95 % confidence interval of the mean over "
                   f"utterances; the small line: the change from {BASE}, green when better.</p>")  # fmt: skip
    for s in sets:
        colors = model_colors(s.models)
        n = max((int(s.metrics[m].get("n_utts", 0)) for m in s.models), default=0)
        out += [f'<h2 id="set-{_e(s.name)}">{_e(s.name)}</h2>',
                f'<p class="legend">{len(s.models)} models' + (f", {n} utterances" if n else "") + "</p>",
                *_metrics_tables(s, colors)]  # fmt: skip
        if s.scatters:
            out += ["<h3>Trade-offs</h3>", '<div class="figures">',
                    *(f"<figure>{svg}</figure>" for svg in s.scatters), "</div>"]  # fmt: skip
        for png, alt in ((s.bars_png, "metrics per model with confidence intervals"),
                         (s.cer_png, "per-utterance CER per model")):  # fmt: skip
            if png:
                out.append(f'<div><img src="{_e(png)}" alt="{_e(s.name)}: {alt}"></div>')
        if s.examples:
            out += [f"<h3>Examples ({len(s.examples)})</h3>", *_examples_table(s)]
        if s.mels_png:
            out.append(f'<div><img src="{_e(s.mels_png)}" alt="{_e(s.name)}: log-mel spectrograms of the first '
                       'example"></div>')  # fmt: skip
        out += _problems_block(s)
    if side_models:
        out += _side_models(side_models)
    if curves_png:
        out += ['<h2 id="training">Training curves</h2>',
                f'<div><img src="{_e(curves_png)}" alt="training and validation loss of every trained model"></div>']
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def write_html_report(results_path: str, html_dir: str, exp_dir: str | None = None, data_dir: str = "data",
                      num_examples: int = 4, test_sets: Sequence[str] | None = None,
                      command: str | None = None) -> Report:  # fmt: skip
    """Render ``html_dir/index.html`` (plots and audio beside it) from ``results_path``.

    ``exp_dir`` defaults to the folder of ``results_path``; ``test_sets`` to all of them.
    A missing input is listed in the page and the returned :class:`Report`; only an unreadable
    ``results.json`` or an unwritable ``html_dir`` raises.
    """
    exp_dir = exp_dir or os.path.dirname(os.path.abspath(results_path))
    with locked(results_path):
        results = load_results(results_path)
    present = sorted({ts for sets in results.values() for ts in sets})
    wanted = present if test_sets is None else list(test_sets)
    sets, notes = [], []
    for ts in wanted:
        if ts not in present:
            notes.append(f"test set {ts} is not in {results_path}: skipped")
            logger.warning("report: %s", notes[-1])
            continue
        logger.info("report: test set %s", ts)
        sets.append(build_set_report(ts, results, exp_dir, data_dir, html_dir, num_examples))
    os.makedirs(html_dir, exist_ok=True)
    side = gather_side_models(exp_dir)
    side = side if any(sm.metrics is not None for sm in side) else []
    curves = os.path.join(html_dir, "training_curves.png")
    curves_png = "training_curves.png" if plot_train_curves(curves, gather_train_curves(exp_dir, list(results))) \
        else None
    index = os.path.join(html_dir, "index.html")
    atomic_write_text(index, render_html(sets, command=command, notes=notes, side_models=side, curves_png=curves_png))
    return Report(index, sets, notes, side, curves_png)
