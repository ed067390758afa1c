"""The listening page ``exp/report/index.html``: metrics, plots and audio examples of every test set.

One self-contained folder (zip it and send it): ``index.html`` with inline CSS and no script,
the plots as PNG (matplotlib, Agg) and the example audio copied into ``audio/``, every path
relative. Per test set:

* the table of ``results.json`` (rows: models, ``ground_truth`` first; columns: metrics);
* ``<set>_metrics.png``: a bar per model, one subplot per metric;
* ``<set>_cer.png``: per-utterance CER of every model (boxplot) from its ``per_utt.tsv``;
* ``<set>_mels.png``: log-mel spectrograms of the first example, ground truth above every model
  (the same 16 kHz, 80-bin features the models use), to look at what the metrics summarize;
* ``--num_examples`` utterances spread evenly over the sorted ids (the same ones every run),
  each a row of ``<audio controls>`` players: prompt, ground truth, then every model, with the
  text, the prompt's text and, under a model, its CER and what the judge heard.

Where things are found (the layout of stage 9 of ``egs/TEMPLATE/rl1/rl.sh``); the test sets
and models are those of ``results.json``:

=================  ==========================================================================
texts, prompts     ``<data_dir>/<set>/{text,prompt.scp,prompt_text}``
ground truth       audio ``<data_dir>/<set>/wav.scp`` (+ ``segments``);
                   scores ``<exp_dir>/ground_truth/<set>/score/per_utt.tsv``
a model            audio ``<exp_dir>/<model>/decode/<set>/wav.scp`` (stage 8);
                   scores ``<exp_dir>/<model>/decode/<set>/score/per_utt.tsv`` (the main judge;
                   the second opinions in ``score_<judge>/`` are not plotted)
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
import logging
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ttsrl.data.audio import load_audio, write_wav
from ttsrl.data.datadir import DataDir, DataDirError, read_kv
from ttsrl.score.results import (
    COUNT_METRICS,
    GROUND_TRUTH,
    METRICS,
    load_results,
    locked,
    metric_order,
    model_order,
    split_metric,
)
from ttsrl.utils.fileio import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

PROMPT = "prompt"  # the role of the prompt column among the players
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.+-]")


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
    models: list[str]  # rows of the table, ground_truth first
    metrics: dict[str, dict[str, float | int]]  # model -> metric -> value
    bars_png: str | None = None
    cer_png: str | None = None
    mels_png: str | None = None
    examples: list[Example] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    index: str
    sets: list[SetReport]
    notes: list[str] = field(default_factory=list)  # problems that belong to no test set

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


# -- plots ------------------------------------------------------------------------------------
def _colors(models: Sequence[str]) -> dict[str, str]:
    return {m: f"C{i % 10}" for i, m in enumerate(models)}


def _title(name: str) -> str:
    base, qualifier = split_metric(name)
    title = METRICS[base][0]
    return f"{title} [{qualifier}]" if qualifier else title


def _cell(name: str, value: float | int | None) -> str:
    return "-" if value is None else METRICS[split_metric(name)[0]][1].format(value)


def plot_metric_bars(path: str, test_set: str, models: Sequence[str],
                     metrics: Mapping[str, Mapping[str, float | int]]) -> bool:  # fmt: skip
    """A bar per model, a subplot per metric (counts left out); False when there is nothing to plot."""
    names = [n for n in metric_order({k for m in models for k in metrics[m]}) if n not in COUNT_METRICS]
    if not names:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False)
    colors = _colors(models)
    for ax, name in zip(axes.flat, names, strict=False):
        have = [m for m in models if name in metrics[m]]
        values = [metrics[m][name] for m in have]
        bars = ax.bar(range(len(have)), values, color=[colors[m] for m in have])
        ax.bar_label(bars, labels=[_cell(name, v) for v in values], fontsize=7)
        ax.set_xticks(range(len(have)), have, rotation=30, ha="right", fontsize=8)
        ax.set_title(_title(name), fontsize=10)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"{test_set}: metrics per model")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return True


def plot_cer_distribution(path: str, test_set: str, cers: Mapping[str, Sequence[float]]) -> bool:
    """Boxplot of the per-utterance CER of every model; False when no model has any."""
    models = [m for m in cers if cers[m]]
    if not models:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(models) + 2), 4))
    parts = ax.boxplot([cers[m] for m in models], patch_artist=True, showmeans=True)
    colors = _colors(list(cers))
    for box, m in zip(parts["boxes"], models, strict=True):
        box.set_facecolor(colors[m])
        box.set_alpha(0.5)
    ax.set_xticks(range(1, len(models) + 1), [f"{m}\n(n={len(cers[m])})" for m in models], fontsize=8)
    ax.set_ylabel("CER per utterance (%)")
    ax.set_title(f"{test_set}: per-utterance CER (triangle: mean)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return True


def plot_mels(path: str, title: str, wavs: Mapping[str, str]) -> bool:
    """Log-mel spectrograms of ``{role: wav path}``, one row each on a shared time axis; False if none reads."""
    from ttsrl.feats.mel import MelConfig, MelExtractor

    cfg = MelConfig()
    extractor = MelExtractor(cfg)
    mels = {}
    for role, wav_path in wavs.items():
        try:
            wav, _ = load_audio(wav_path, cfg.sample_rate)
        except Exception as e:  # noqa: BLE001 - an unreadable clip is left out of the plot
            logger.warning("mel plot: %s: %s", wav_path, e)
            continue
        if len(wav):
            mels[role] = extractor.compute(wav)
    if not mels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = max(m.shape[0] for m in mels.values())
    fig, axes = plt.subplots(len(mels), 1, figsize=(max(6.0, frames / 40), 1.6 * len(mels) + 0.6), squeeze=False)
    lo = min(float(m.min()) for m in mels.values())
    hi = max(float(m.max()) for m in mels.values())
    for ax, (role, mel) in zip(axes[:, 0], mels.items(), strict=True):
        ax.imshow(mel.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                  extent=(0, mel.shape[0] / cfg.frame_rate, 0, mel.shape[1]))
        ax.set_xlim(0, frames / cfg.frame_rate)
        ax.set_ylabel(role, fontsize=8)
        ax.set_yticks([])
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return True


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
            continue
        rel = f"{rel_dir}/{role}.wav"
        err = copy_clip(spec[0], spec[1], os.path.join(html_dir, rel))
        ex.clips[role] = Clip(None if err else rel, err)
        if err:
            _problem(report, f"{utt}: {role} audio unreadable ({err})")


def build_set_report(test_set: str, results: Mapping[str, Mapping[str, Mapping[str, float | int]]],
                     exp_dir: str, data_dir: str, html_dir: str, num_examples: int) -> SetReport:  # fmt: skip
    """Gather one test set: copy its example audio into ``html_dir/audio/<set>/`` and draw its plots."""
    models = model_order([m for m in results if test_set in results[m]])
    report = SetReport(test_set, models, {m: dict(results[m][test_set]) for m in models})
    data = _load_data_dir(os.path.join(data_dir, test_set), report)

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

    os.makedirs(html_dir, exist_ok=True)
    bars = os.path.join(html_dir, f"{test_set}_metrics.png")
    if plot_metric_bars(bars, test_set, models, report.metrics):
        report.bars_png = os.path.basename(bars)
    cer = os.path.join(html_dir, f"{test_set}_cer.png")
    if plot_cer_distribution(cer, test_set, {m: per_utt_values(rows, "cer") for m, rows in per_utt.items()}):
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


# -- the page ---------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccc; margin-top: 2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f0f0f0; }
table.metrics td { text-align: right; font-variant-numeric: tabular-nums; }
table.metrics td.model { text-align: left; font-weight: 600; }
.scroll { overflow-x: auto; }
table.examples td { min-width: 14em; }
table.examples td.utterance { min-width: 10em; max-width: 18em; }
.utt { font-family: monospace; font-size: 0.85em; color: #555; }
.text { margin: 0.3em 0; }
.score, .hyp { font-size: 0.8em; color: #555; }
.missing { color: #a00; font-size: 0.85em; }
ul.problems { color: #a00; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
audio { width: 14em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _metrics_table(s: SetReport) -> list[str]:
    names = metric_order({k for m in s.models for k in s.metrics[m]})
    out = ['<table class="metrics">', "<tr><th>model</th>" + "".join(f"<th>{_e(_title(n))}</th>" for n in names)
           + "</tr>"]  # fmt: skip
    for m in s.models:
        cells = "".join(f"<td>{_e(_cell(n, s.metrics[m].get(n)))}</td>" for n in names)
        out.append(f'<tr><td class="model">{_e(m)}</td>{cells}</tr>')
    out.append("</table>")
    return out


def _player(clip: Clip | None) -> str:
    if clip is None or clip.path is None:
        return f'<div class="missing">missing: {_e(clip.missing if clip else "not gathered")}</div>'
    return f'<audio controls preload="metadata" src="{_e(clip.path)}"></audio>'


def _examples_table(s: SetReport) -> list[str]:
    roles = [PROMPT, GROUND_TRUTH] + [m for m in s.models if m != GROUND_TRUTH]
    out = ['<div class="scroll"><table class="examples">', "<tr><th>utterance</th>" + "".join(f"<th>{_e(r)}</th>" for r in roles)
           + "</tr>"]  # fmt: skip
    for ex in s.examples:
        cells = [f'<td class="utterance"><div class="utt">{_e(ex.utt)}</div><div class="text">{_e(ex.text)}</div></td>']
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


def render_html(sets: Sequence[SetReport], command: str | None = None, date: str | None = None,
                notes: Sequence[str] = ()) -> str:  # fmt: skip
    """The page (every text escaped; every path relative to the report folder)."""
    date = date or datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>ttsrl report</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           "<h1>ttsrl report</h1>", f'<p class="meta">{_e(date)}'
           + (f" &middot; <code>{_e(command)}</code>" if command else "") + "</p>"]  # fmt: skip
    if notes:
        out += ['<ul class="problems">', *(f"<li>{_e(n)}</li>" for n in notes), "</ul>"]
    if not sets:
        out.append("<p>(no results yet)</p>")
    else:
        out.append("<p>" + " &middot; ".join(f'<a href="#set-{_e(s.name)}">{_e(s.name)}</a>' for s in sets) + "</p>")
    for s in sets:
        out += [f'<h2 id="set-{_e(s.name)}">{_e(s.name)}</h2>', *_metrics_table(s)]
        if s.problems:
            out.append(f"<details open><summary>{len(s.problems)} missing or unreadable input(s)</summary>")
            out += ['<ul class="problems">', *(f"<li>{_e(p)}</li>" for p in s.problems), "</ul>", "</details>"]
        for png, alt in ((s.bars_png, "metrics per model"), (s.cer_png, "per-utterance CER per model"),
                         (s.mels_png, "log-mel spectrograms of the first example")):
            if png:
                out.append(f'<div><img src="{_e(png)}" alt="{_e(s.name)}: {alt}"></div>')
        if s.examples:
            out += [f"<h3>Examples ({len(s.examples)})</h3>", *_examples_table(s)]
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
    index = os.path.join(html_dir, "index.html")
    atomic_write_text(index, render_html(sets, command=command, notes=notes))
    return Report(index, sets, notes)
