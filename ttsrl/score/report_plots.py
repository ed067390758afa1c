"""The figures of the report page (``ttsrl.score.report``): PNG plots (matplotlib, Agg) and inline SVG scatters.

Every figure gives a model the same colour (:func:`model_colors`, one distinct colour per row
for up to 18 rows; the references ground truth and resynth in black and grey), so a model is
found at a glance in the tables' swatches, the dot plots, the boxplot and the scatters.

=========================  =================================================================
:func:`plot_metric_dots`   a dot per model with its 95 % confidence interval, one panel per
                           metric, the x axis zoomed on the values (not from 0: DNSMOS 1.9 vs
                           2.1 shows), a dashed line at base, the values beside the panel
:func:`plot_cer_boxes`     per-utterance CER of every model (boxplot)
:func:`plot_mels`          log-mel spectrograms of one example, ground truth above every model
:func:`plot_train_curves`  training and validation loss of every trained model, a panel each
:func:`svg_scatter`        a trade-off scatter (e.g. CER vs KL) as inline SVG: a point per model
                           with error bars, its name beside it and a tooltip (``<title>``); no
                           script, so the page stays one self-contained folder
=========================  =================================================================

Usage::

    colors = model_colors(["ground_truth", "base", "dpo"])
    plot_metric_dots("exp/report/test_metrics.png", "test", models, metrics, cis, ["cer", "sim"], colors)
    svg = svg_scatter([ScatterPoint("dpo", 0.12, 43.5, None, 2.1, colors["dpo"])], "KL", "CER (%)", "test: CER vs KL")
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ttsrl.utils.fileio import atomic_path

logger = logging.getLogger(__name__)

#: Distinct colours in the order rows get them (matplotlib's tab10 without grey, then tab20's light shades).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")  # fmt: skip
REFERENCE_COLORS = {"ground_truth": "#222222", "resynth": "#8c8c8c"}


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """A colour per model: the references fixed, the others :data:`PALETTE` in order (cycling past 18)."""
    out, i = {}, 0
    for m in models:
        if m in REFERENCE_COLORS:
            out[m] = REFERENCE_COLORS[m]
        else:
            out[m] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str, dpi: int = 90) -> None:
    plt = _pyplot()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_metric_dots(path: str, test_set: str, models: Sequence[str], metrics: Mapping[str, Mapping[str, float]],
                     cis: Mapping[str, Mapping[str, float]], names: Sequence[str], colors: Mapping[str, str],
                     titles: Mapping[str, str] | None = None, fmt: Mapping[str, str] | None = None,
                     base: str = "base") -> bool:  # fmt: skip
    """A panel per metric of ``names``: a dot per model of ``models`` (top to bottom) with its CI
    half-width from ``cis[model][name]`` when known. False when no model has any of the metrics."""
    names = [n for n in names if any(n in metrics.get(m, {}) for m in models)]
    if not names or not models:
        return False
    plt = _pyplot()
    titles, fmt = titles or {}, fmt or {}
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    row_h = 0.24 * len(models) + 0.9
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, row_h * nrows), squeeze=False)
    ys = {m: len(models) - 1 - i for i, m in enumerate(models)}  # the first model on top
    for ax, name in zip(axes.flat, names, strict=False):
        have = [m for m in models if name in metrics.get(m, {})]
        lo = hi = None
        for m in have:
            v, e = metrics[m][name], cis.get(m, {}).get(name) or 0.0
            ax.errorbar([v], [ys[m]], xerr=[[e], [e]] if e else None, fmt="o", color=colors[m], ms=5, capsize=2,
                        lw=1.2)  # fmt: skip
            lo = v - e if lo is None else min(lo, v - e)
            hi = v + e if hi is None else max(hi, v + e)
        span = (hi - lo) if hi != lo else max(abs(hi), 1.0) * 0.1
        ax.set_xlim(lo - 0.08 * span, hi + 0.08 * span)
        if base in have:
            ax.axvline(metrics[base][name], color="#999999", ls="--", lw=0.8)
        ax.set_ylim(-0.6, len(models) - 0.4)
        ax.set_yticks([ys[m] for m in models], models, fontsize=7.5)
        right = ax.twinx()  # the values as labels on the right: they never overlap the dots or each other
        right.set_ylim(ax.get_ylim())
        f = fmt.get(name, "{:.3g}")
        right.set_yticks([ys[m] for m in have], [f.format(metrics[m][name]) for m in have], fontsize=7)
        right.tick_params(length=0)
        ax.set_title(titles.get(name, name), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"{test_set}: metrics per model (dot: mean; bar: 95 % CI over utterances; dashed: {base})",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_cer_boxes(path: str, test_set: str, cers: Mapping[str, Sequence[float]], colors: Mapping[str, str]) -> bool:
    """Boxplot of the per-utterance CER of every model (in the order of ``cers``); False when none has any."""
    models = [m for m in cers if cers[m]]
    if not models:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.95 * len(models) + 2), 3.8))
    parts = ax.boxplot([cers[m] for m in models], patch_artist=True, showmeans=True)
    for box, m in zip(parts["boxes"], models, strict=True):
        box.set_facecolor(colors.get(m, "#cccccc"))
        box.set_alpha(0.55)
    ax.set_xticks(range(1, len(models) + 1), [f"{m}\n(n={len(cers[m])})" for m in models], fontsize=7.5,
                  rotation=30, ha="right")  # fmt: skip
    ax.set_ylabel("CER per utterance (%)")
    ax.set_title(f"{test_set}: per-utterance CER (box: quartiles; triangle: mean)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_mels(path: str, title: str, wavs: Mapping[str, str]) -> bool:
    """Log-mel spectrograms of ``{role: wav path}``, one row each on a shared time axis; False if none reads."""
    from ttsrl.data.audio import load_audio
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
    plt = _pyplot()
    frames = max(m.shape[0] for m in mels.values())
    fig, axes = plt.subplots(len(mels), 1, figsize=(max(6.0, frames / 40), 1.0 * len(mels) + 0.8), squeeze=False,
                             sharex=True)  # fmt: skip
    lo = min(float(m.min()) for m in mels.values())
    hi = max(float(m.max()) for m in mels.values())
    for ax, (role, mel) in zip(axes[:, 0], mels.items(), strict=True):
        ax.imshow(mel.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                  extent=(0, mel.shape[0] / cfg.frame_rate, 0, mel.shape[1]))  # fmt: skip
        ax.set_xlim(0, frames / cfg.frame_rate)
        ax.set_ylabel(role, fontsize=8, rotation=0, ha="right", va="center")
        ax.set_yticks([])
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path, dpi=80)
    return True


def plot_train_curves(path: str, runs: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]]) -> bool:
    """A panel per run (``{name: {"train": [(step, loss)], "valid": [(step, loss)]}}``): the training
    loss as a line, the validation loss as dots. False when no run has a point."""
    runs = {k: v for k, v in runs.items() if v.get("train") or v.get("valid")}
    if not runs:
        return False
    plt = _pyplot()
    ncols = min(4, len(runs))
    nrows = math.ceil(len(runs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.5 * ncols, 2.5 * nrows), squeeze=False)
    for ax, (name, curves) in zip(axes.flat, runs.items(), strict=False):
        for kind, style in (("train", {"color": "#1f77b4", "lw": 1.0}),
                            ("valid", {"color": "#d62728", "marker": "o", "ms": 3, "lw": 0.8})):  # fmt: skip
            pts = curves.get(kind) or []
            if pts:
                ax.plot([s for s, _ in pts], [v for _, v in pts], label=kind, **style)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    fig.suptitle("training (line) and validation (dots) loss", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


# -- inline SVG scatter ----------------------------------------------------------------------
@dataclass(frozen=True)
class ScatterPoint:
    """One model in a scatter: position, error-bar half-widths (None: none) and colour."""

    model: str
    x: float
    y: float
    xerr: float | None
    yerr: float | None
    color: str


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(k * mag for k in (1, 2, 2.5, 5, 10) if k * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt_tick(v: float) -> str:
    return f"{v:.6g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def svg_scatter(points: Sequence[ScatterPoint], x_label: str, y_label: str, title: str, better: str = "",
                width: int = 560, height: int = 380, css_class: str = "tradeoff",
                x_fmt: str = "{:.3g}", y_fmt: str = "{:.3g}") -> str:  # fmt: skip
    """An inline ``<svg>``: a point per model (``<g class="point">``) with error bars, its name beside
    it where there is room and a tooltip, a legend of every model under the plot; ``better`` (e.g.
    ``"lower left"``) is written in that corner with an arrow. Empty string without points."""
    pts = [p for p in points if math.isfinite(p.x) and math.isfinite(p.y)]
    if not pts:
        return ""
    left, right, top, bottom = 64, 24, 34, 48
    # the legend under the plot: every model's colour and name (a crowded name is left out beside its point)
    legend: list[tuple[float, int, ScatterPoint]] = []
    lx, row = 0.0, 0
    for p in pts:
        w = 18 + 6.3 * len(p.model)
        if lx and lx + w > width - left - right:
            lx, row = 0.0, row + 1
        legend.append((lx, row, p))
        lx += w + 10
    legend_h = 16 * (row + 1) + 6
    height += legend_h
    bottom += legend_h
    xs_lo = min(p.x - (p.xerr or 0) for p in pts)
    xs_hi = max(p.x + (p.xerr or 0) for p in pts)
    ys_lo = min(p.y - (p.yerr or 0) for p in pts)
    ys_hi = max(p.y + (p.yerr or 0) for p in pts)
    xt, yt = nice_ticks(xs_lo, xs_hi), nice_ticks(ys_lo, ys_hi)
    x0, x1 = min(xt[0], xs_lo), max(xt[-1], xs_hi)
    y0, y1 = min(yt[0], ys_lo), max(yt[-1], ys_hi)
    pw, ph = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - x0) / ((x1 - x0) or 1.0) * pw

    def sy(v: float) -> float:
        return top + ph - (v - y0) / ((y1 - y0) or 1.0) * ph

    out = [f'<svg class="{_e(css_class)}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
           f"<title>{_e(title)}</title>",
           f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" class="svg-title">{_e(title)}</text>']  # fmt: skip
    for t in xt:  # grid and tick labels
        out.append(f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{top + ph}" class="grid"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">{_fmt_tick(t)}</text>')
    for t in yt:
        out.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">{_fmt_tick(t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 34}" text-anchor="middle" class="axis">{_e(x_label)}</text>')
    for lx, row, p in legend:
        ly = top + ph + 48 + 16 * row
        out.append(f'<g class="legend" data-model="{_e(p.model)}"><circle cx="{left + lx + 5:.1f}" cy="{ly - 4}" r="4.5" '
                   f'fill="{p.color}"/><text x="{left + lx + 13:.1f}" y="{ly}" class="label">{_e(p.model)}</text></g>')
    out.append(f'<text x="14" y="{top + ph / 2:.1f}" text-anchor="middle" class="axis" '
               f'transform="rotate(-90 14 {top + ph / 2:.1f})">{_e(y_label)}</text>')  # fmt: skip
    if better:
        corner_x = left + 8 if "left" in better else left + pw - 8
        corner_y = top + ph - 8 if "lower" in better else top + 16
        arrow = {"lower left": "\u2199", "upper left": "\u2196", "lower right": "\u2198", "upper right": "\u2197"}
        anchor = "start" if "left" in better else "end"
        out.append(f'<text x="{corner_x:.1f}" y="{corner_y:.1f}" text-anchor="{anchor}" class="better">'
                   f"{arrow.get(better, '')} better</text>")  # fmt: skip
    placed: list[tuple[float, float, float, float]] = []
    for p in sorted(pts, key=lambda q: (sy(q.y), sx(q.x))):
        cx, cy = sx(p.x), sy(p.y)
        g = [f'<g class="point" data-model="{_e(p.model)}">',
             f"<title>{_e(p.model)}: {_e(x_label)} {x_fmt.format(p.x)}"
             + (f" \u00b1 {x_fmt.format(p.xerr)}" if p.xerr else "")
             + f", {_e(y_label)} {y_fmt.format(p.y)}" + (f" \u00b1 {y_fmt.format(p.yerr)}" if p.yerr else "")
             + "</title>"]  # fmt: skip
        if p.xerr:
            g.append(f'<line x1="{sx(p.x - p.xerr):.1f}" y1="{cy:.1f}" x2="{sx(p.x + p.xerr):.1f}" y2="{cy:.1f}" '
                     f'stroke="{p.color}" class="err"/>')  # fmt: skip
        if p.yerr:
            g.append(f'<line x1="{cx:.1f}" y1="{sy(p.y - p.yerr):.1f}" x2="{cx:.1f}" y2="{sy(p.y + p.yerr):.1f}" '
                     f'stroke="{p.color}" class="err"/>')  # fmt: skip
        g.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{p.color}"/>')
        # the name beside the point, at the first place that overlaps no placed name; none free: the legend tells
        w, h = 6.3 * len(p.model), 12.0
        spots = [(cx + 7, cy - 4, "start"), (cx + 7, cy + 13, "start"), (cx - 7, cy - 4, "end"),
                 (cx - 7, cy + 13, "end"), (cx + 7, cy + 4, "start"), (cx - 7, cy + 4, "end"),
                 (cx - w / 2, cy - 9, "start"), (cx - w / 2, cy + 18, "start")]  # fmt: skip
        for tx, ty, anchor in spots:
            bx = tx if anchor == "start" else tx - w
            box = (bx, ty - h + 2, bx + w, ty + 2)
            inside = left <= box[0] and box[2] <= left + pw and top <= box[1] and box[3] <= top + ph
            if inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                placed.append(box)
                g.append(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="label">{_e(p.model)}</text>')
                break
        g.append("</g>")
        out += g
    out.append("</svg>")
    return "\n".join(out)
