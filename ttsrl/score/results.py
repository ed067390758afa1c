"""The results store ``exp/results.json`` and its rendering ``exp/RESULTS.md``.

``results.json`` gathers every model x test set::

    {"<model_tag>": {"<test_set>": {"cer": 2.1, "wer": 4.3, "sim": 0.81, "n_utts": 50, ...}}}

CER/WER are in percent. Known metric names are in :data:`METRICS`; a name may carry a
judge qualifier after ``@`` (``"wer@pocketsphinx"``) when one test set is scored by
several judges. ``ground_truth`` is the model tag of the test set's own audio.

The dev set's entries come from ``ttsrl.bin.headroom`` (stage 9): ``cer@tokenizer`` (sampled
candidates read by the speech tokenizer's CTC head, not the judge), ``cer_best_of_n@tokenizer``
(the base LM's best of N by the method's reward) and ``headroom_captured`` (the share of the gap
between the two that the method closed; see ``ttsrl.score.headroom``).

Several decode jobs may finish at once: :func:`update_results` takes an exclusive
``fcntl.flock`` on ``<path>.lock``, re-reads the file, merges, and replaces it atomically.

Usage::

    from ttsrl.score.results import load_results, render_results_md, update_results

    update_results("exp/results.json", "base", "test", {"wer": 4.3, "cer": 2.1, "n_utts": 50})
    md = render_results_md(load_results("exp/results.json"), command="./run.sh --stage 9")
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import math
import os
import re
from collections.abc import Iterator, Mapping

from ttsrl.utils.fileio import atomic_write_text

#: Metric name -> (column title, format). Column order of RESULTS.md follows this order.
METRICS: dict[str, tuple[str, str]] = {
    "wer": ("WER (%)", "{:.2f}"),
    "wer_corpus": ("corpus WER (%)", "{:.2f}"),
    "cer": ("CER (%)", "{:.2f}"),
    "cer_corpus": ("corpus CER (%)", "{:.2f}"),
    "per": ("PER (%)", "{:.2f}"),
    "sim": ("SIM", "{:.3f}"),
    "f0v": ("F0 var", "{:.4f}"),
    "nll": ("CTC NLL", "{:.3f}"),
    "dnsmos": ("DNSMOS", "{:.2f}"),
    "dnsmos_sig": ("DNSMOS SIG", "{:.2f}"),
    "dnsmos_bak": ("DNSMOS BAK", "{:.2f}"),
    "dnsmos_p808": ("DNSMOS P.808", "{:.2f}"),
    "emo_acc": ("emotion acc (%)", "{:.1f}"),
    "emo_share": ("judged emotion (%)", "{:.1f}"),
    "cer_best_of_n": ("best-of-N CER (%)", "{:.2f}"),
    "headroom_captured": ("headroom captured", "{:.2f}"),
    "kl": ("KL", "{:.4f}"),
    "train_min": ("align train (min)", "{:.1f}"),
    "n_utts": ("utts", "{:d}"),
    "n_missing": ("missing", "{:d}"),
}
COUNT_METRICS = ("n_utts", "n_missing")
GROUND_TRUTH = "ground_truth"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_QUALIFIER_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ResultsError(ValueError):
    """Malformed results (unknown metric, non-number, bad tag); the message names it."""


def split_metric(name: str) -> tuple[str, str | None]:
    """``"wer@pocketsphinx"`` -> ``("wer", "pocketsphinx")``; ``"sim"`` -> ``("sim", None)``."""
    base, sep, qualifier = name.partition("@")
    return base, (qualifier if sep else None)


def validate_metrics(metrics: Mapping[str, object], where: str = "metrics") -> dict[str, float | int]:
    """Check names and values; returns a plain dict (counts as int, the rest as float)."""
    out: dict[str, float | int] = {}
    for name, value in metrics.items():
        base, qualifier = split_metric(str(name))
        if base not in METRICS or (qualifier is not None and not _QUALIFIER_RE.match(qualifier)):
            raise ResultsError(
                f"{where}: unknown metric {name!r} (known: {', '.join(METRICS)}, optionally as name@judge)"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(f"{where}: metric {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ResultsError(f"{where}: metric {name!r} is not finite ({value!r})")
        if base in COUNT_METRICS:
            if float(value) != int(value) or value < 0:
                raise ResultsError(f"{where}: {name!r} must be a non-negative integer, got {value!r}")
            out[name] = int(value)
        else:
            out[name] = float(value)
    return out


def validate_results(results: object, where: str = "results") -> dict[str, dict[str, dict[str, float | int]]]:
    """Check the whole ``{model_tag: {test_set: {metric: number}}}`` structure."""
    if not isinstance(results, dict):
        raise ResultsError(f"{where}: expected an object of model tags, got {type(results).__name__}")
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for tag, sets in results.items():
        _check_name(tag, "model tag", where)
        if not isinstance(sets, dict):
            raise ResultsError(f"{where}: {tag}: expected an object of test sets")
        out[tag] = {}
        for test_set, metrics in sets.items():
            _check_name(test_set, "test set", where)
            if not isinstance(metrics, dict):
                raise ResultsError(f"{where}: {tag}/{test_set}: expected an object of metrics")
            out[tag][test_set] = validate_metrics(metrics, f"{where}: {tag}/{test_set}")
    return out


def _check_name(name: object, kind: str, where: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ResultsError(f"{where}: invalid {kind} {name!r} (letters, digits and _.+- only)")


def load_results(path: str | os.PathLike) -> dict[str, dict[str, dict[str, float | int]]]:
    """Read and validate ``results.json``; a missing file is an empty store."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON ({e})") from None
    return validate_results(data, path)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (blocks until other writers finish)."""
    lock_path = os.fspath(path) + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def update_results(
    path: str | os.PathLike, model_tag: str, test_set: str, metrics: Mapping[str, object]
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Merge ``metrics`` into ``results[model_tag][test_set]`` (other entries are kept, the
    given metrics overwrite older values) under the file lock; returns the merged store."""
    path = os.fspath(path)
    _check_name(model_tag, "model tag", path)
    _check_name(test_set, "test set", path)
    new = validate_metrics(metrics, f"{model_tag}/{test_set}")
    with locked(path):
        results = load_results(path)
        results.setdefault(model_tag, {}).setdefault(test_set, {}).update(new)
        atomic_write_text(path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def model_order(tags: list[str]) -> list[str]:
    """``ground_truth`` first, then ``base``, then the others sorted."""
    head = [t for t in (GROUND_TRUTH, "base") if t in tags]
    return head + sorted(t for t in tags if t not in head)


def metric_order(names: set[str]) -> list[str]:
    """Known order of :data:`METRICS`; a qualified name follows its base name."""
    base_rank = {m: i for i, m in enumerate(METRICS)}
    return sorted(names, key=lambda n: (base_rank[split_metric(n)[0]], split_metric(n)[1] or ""))


def _column_title(name: str) -> str:
    base, qualifier = split_metric(name)
    title = METRICS[base][0]
    return f"{title} [{qualifier}]" if qualifier else title


def _cell(name: str, value: float | int | None) -> str:
    if value is None:
        return "-"
    return METRICS[split_metric(name)[0]][1].format(value)


def environment_header(command: str | None = None, date: str | None = None) -> list[str]:
    """Markdown lines: date, torch version and the command that produced the report."""
    from importlib import metadata

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    date = date or datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [f"- date: {date}", f"- torch: {torch_version}"]
    if command:
        lines.append(f"- command: `{command}`")
    return lines


def render_results_md(
    results: Mapping[str, Mapping[str, Mapping[str, float | int]]],
    command: str | None = None,
    date: str | None = None,
) -> str:
    """``RESULTS.md``: the environment header, then one table per test set (rows: model
    tags, ``ground_truth`` first then ``base``; columns: the metrics present)."""
    results = validate_results(dict(results))
    lines = ["# RESULTS", "", "## Environment", "", *environment_header(command, date), ""]
    lines += [
        "WER/CER: mean of per-utterance rates x100 (Seed-TTS-Eval); the corpus columns are total errors / "
        "total reference tokens. SIM: cosine of speaker embeddings with the prompt. F0 var: variance of ln F0 "
        "over voiced frames. Emotion acc: share of utterances the audio emotion judge (trained on the ground truth) "
        "gives the test set's utt2emo emotion; judged emotion [e]: share it judges as e.",
        "",
    ]
    test_sets = sorted({ts for sets in results.values() for ts in sets})
    if not test_sets:
        lines += ["(no results yet)", ""]
    for ts in test_sets:
        tags = model_order([t for t in results if ts in results[t]])
        names = metric_order({m for t in tags for m in results[t][ts]})
        lines += [f"## {ts}", ""]
        lines.append("| model | " + " | ".join(_column_title(n) for n in names) + " |")
        lines.append("|---|" + "|".join("---:" for _ in names) + "|")
        for tag in tags:
            row = results[tag][ts]
            lines.append(f"| {tag} | " + " | ".join(_cell(n, row.get(n)) for n in names) + " |")
        lines.append("")
    return "\n".join(lines)


def write_results_md(
    results_path: str | os.PathLike, out_path: str | os.PathLike, command: str | None = None
) -> str:
    """Render ``results_path`` into ``out_path`` (atomically); returns the markdown."""
    with locked(results_path):
        results = load_results(results_path)
    md = render_results_md(results, command=command)
    atomic_write_text(os.fspath(out_path), md)
    return md
