"""Score a synthesized test set the Seed-TTS-Eval way (stage 9): the logic of ``ttsrl-score``.

A test set is a data directory (``text``; ``prompt.scp`` for the voice prompts; ``wav.scp``
for its own audio) or a Seed-TTS-Eval list (``utt|prompt_text|prompt_wav|infer_text[|gt_wav]``,
wav paths relative to the list's folder). The audio to score is ``<wav_dir>/<utt>.wav``,
a ``wav.scp``, or, with neither, the test set's own audio: the ``ground_truth`` row.

Per utterance (``per_utt.tsv``, rates in percent):

==========  ==============================================================================
wer, cer    the judge's transcript against the text (:mod:`ttsrl.score.wer`)
sim         speaker similarity to the prompt (``prompt.scp`` / the list's prompt_wav; else
            the ground-truth audio of the same utterance, with a note)
f0v         variance of ln F0 over voiced frames
dnsmos      DNSMOS OVRL (and its SIG, BAK, P.808 columns)
nll         CTC negative log-likelihood of the text per character, from the ``ctc`` judge
            (ARDM-DPO's robustness metric; not in the default set: ``metrics=(..., "nll")``)
emo         the emotion judged by an audio classifier (``emo_judge``, :mod:`ttsrl.score.emotion`;
            not in the default set): per utterance ``emo_pred``; summaries ``emo_acc``, the share
            (%) judged as the data dir's ``utt2emo``, and ``emo_share@<emotion>``, the share (%)
            judged as each emotion (emotion control moves it toward its target)
==========  ==============================================================================

A missing hypothesis wav is counted in ``n_missing`` and listed (result.json, missing.txt
and the log); so is a corrupt or empty one (``strict=True`` makes either fatal). Wavs of
``wav_dir`` that are not in the test set are ignored with a note.

Usage::

    from ttsrl.score.scorer import ScoreConfig, load_test_set, run_scoring

    summary = run_scoring(
        load_test_set(data_dir="data/test"), "exp/base/decode/test/score",
        ScoreConfig(judge="pocketsphinx"), wav_dir="exp/base/decode/test/wavs",
        results="exp/results.json", model_tag="base", test_set="test",
    )
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ttsrl.data.audio import AudioError, load_audio
from ttsrl.data.datadir import DataDir, DataDirError, read_kv, summarize_ids
from ttsrl.score.results import GROUND_TRUTH, atomic_write_text, update_results
from ttsrl.score.wer import ErrorCounts, summarize, utterance_errors

logger = logging.getLogger(__name__)

SCORE_METRICS = ("wer", "cer", "sim", "f0v", "dnsmos")
ASR_METRICS = ("wer", "cer")
JUDGE_METRICS = ("nll",)  # need a judge with ctc_nll (the ctc judge), so they are not in the default set
EMO_METRICS = ("emo",)  # needs a trained emotion judge (emo_judge), so not in the default set
SAMPLE_RATE = 16000  # every judge works at 16 kHz; audio is resampled once on loading

Spec = tuple[str, "tuple[float, float] | None"]  # (wav.scp value, segment)


class ScoreError(ValueError):
    """Scoring cannot proceed (bad options, no audio, a fatal unreadable wav); names the cause."""


@dataclass
class ScoreConfig:
    """What to measure and with which models."""

    metrics: tuple[str, ...] = SCORE_METRICS
    judge: str = "pocketsphinx"
    judge_path: str | None = None
    judge_tag: str | None = None  # results.json names become wer@<tag>, cer@<tag>
    sim: str = "resemblyzer"  # or "none"
    sim_path: str | None = None
    emo_judge: str | None = None  # model.npz of ttsrl.bin.train_emotion_judge (metric emo)
    lang: str = "en"
    strict: bool = False
    batch_size: int = 8
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)
        known = SCORE_METRICS + JUDGE_METRICS + EMO_METRICS
        unknown = [m for m in self.metrics if m not in known]
        if unknown or not self.metrics:
            raise ScoreError(f"unknown metric(s) {unknown} (choose from {', '.join(known)})")
        if "emo" in self.metrics and not self.emo_judge:
            raise ScoreError("metric emo needs an emotion judge: --emo_judge exp/emotion_judge/model.npz")
        if self.sim == "none" and "sim" in self.metrics:
            self.metrics = tuple(m for m in self.metrics if m != "sim")


@dataclass
class EvalItem:
    utt: str
    text: str
    prompt: Spec | None = None
    audio: Spec | None = None  # the test set's own (ground-truth) audio
    emotion: str | None = None  # utt2emo of a data dir (the emo_acc target)


@dataclass
class EvalSet:
    """Utterances to score, from a data directory or a Seed-TTS-Eval list."""

    source: str
    items: list[EvalItem]
    prompt_source: str | None  # "prompt.scp", "prompt_wav" or None

    @property
    def name(self) -> str:
        base = os.path.basename(os.path.normpath(self.source))
        return os.path.splitext(base)[0] if os.path.isfile(self.source) else base


def load_test_set(data_dir: str | None = None, seedtts_list: str | None = None) -> EvalSet:
    """Read the utterances, texts, prompts and ground-truth audio of a test set."""
    if (data_dir is None) == (seedtts_list is None):
        raise ScoreError("give exactly one of a data directory and a Seed-TTS-Eval list")
    if seedtts_list is not None:
        from ttsrl.data.seedtts import read_seedtts_list

        items = [
            EvalItem(it.utt, it.infer_text, (it.prompt_wav, None), (it.gt_wav, None) if it.gt_wav else None)
            for it in read_seedtts_list(seedtts_list)
        ]
        return EvalSet(seedtts_list, items, "prompt_wav")
    d = DataDir.load(data_dir)
    if not d.text:
        raise DataDirError(f"{data_dir}: no text file (the references of WER/CER)")
    prompts = d.extra.get("prompt.scp", {})
    emotions = d.labels.get("utt2emo", {})
    items = []
    for utt in d.utts:
        if utt not in d.text:
            raise DataDirError(f"{data_dir}/text: no transcript for '{utt}'")
        audio = None
        try:
            audio = d.audio_spec(utt) if d.wav_scp else None
        except KeyError:
            pass
        items.append(EvalItem(utt, d.text[utt], (prompts[utt], None) if utt in prompts else None, audio,
                              emotions.get(utt)))
    return EvalSet(data_dir, items, "prompt.scp" if prompts else None)


@dataclass
class Hypotheses:
    """The audio to score: a spec per utterance (None: missing, with the reason)."""

    specs: dict[str, Spec | None]
    reasons: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    ground_truth: bool = False


def find_hypotheses(test_set: EvalSet, wav_dir: str | None = None, wav_scp: str | None = None) -> Hypotheses:
    """Map every utterance to its audio; with neither ``wav_dir`` nor ``wav_scp`` the test
    set's own audio is scored (the ground-truth mode)."""
    utts = [it.utt for it in test_set.items]
    if wav_dir is not None and wav_scp is not None:
        raise ScoreError("give at most one of --wav_dir and --wav_scp")
    hyp = Hypotheses({})
    if wav_dir is not None:
        if not os.path.isdir(wav_dir):
            raise ScoreError(f"{wav_dir}: wav directory not found")
        for utt in utts:
            path = os.path.join(wav_dir, utt + ".wav")
            hyp.specs[utt] = (path, None) if os.path.isfile(path) else None
            if hyp.specs[utt] is None:
                hyp.reasons[utt] = f"no {utt}.wav in {wav_dir}"
        known = set(utts)
        hyp.extra = sorted(
            f[:-4] for f in os.listdir(wav_dir) if f.endswith(".wav") and f[:-4] not in known
        )  # fmt: skip
    elif wav_scp is not None:
        scp = read_kv(wav_scp)
        for utt in utts:
            hyp.specs[utt] = (scp[utt], None) if utt in scp else None
            if utt not in scp:
                hyp.reasons[utt] = f"not in {wav_scp}"
        hyp.extra = sorted(set(scp) - set(utts))
    else:
        if not any(it.audio for it in test_set.items):
            raise ScoreError(
                f"{test_set.source}: no audio of its own (wav.scp / gt_wav) to score; give --wav_dir or --wav_scp"
            )
        hyp.ground_truth = True
        for it in test_set.items:
            hyp.specs[it.utt] = it.audio
            if it.audio is None:
                hyp.reasons[it.utt] = "no ground-truth audio"
    return hyp


def _load(spec: Spec) -> np.ndarray:
    """Audio at 16 kHz; raises AudioError when unreadable, empty or not finite."""
    wav, _ = load_audio(spec[0], sample_rate=SAMPLE_RATE, segment=spec[1])
    if wav.size == 0:
        raise AudioError(f"empty audio: {spec[0]}")
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"audio holds NaN or infinite samples: {spec[0]}")
    return wav


def _nanmean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


class Scorer:
    """Builds the judges once; :meth:`score` measures one test set."""

    def __init__(self, config: ScoreConfig):
        self.config = config
        self.judge = self.sim = self.dnsmos = self.emo = None
        if any(m in config.metrics for m in ASR_METRICS + JUDGE_METRICS):
            from ttsrl.score.asr import build_asr_judge

            kwargs = {}
            if config.judge == "whisper":
                kwargs = {"path": config.judge_path, "language": config.lang, "device": config.device}
            elif config.judge == "ctc":
                kwargs = {"path": config.judge_path, "device": config.device}
            elif config.judge_path:
                raise ScoreError(
                    f"--judge_path is not used by the {config.judge} judge (its model ships with it)"
                )
            self.judge = build_asr_judge(config.judge, **kwargs)
            if "nll" in config.metrics and not hasattr(self.judge, "ctc_nll"):
                raise ScoreError(f"nll needs a CTC judge (--judge ctc), not {config.judge}")
        if "sim" in config.metrics:
            from ttsrl.score.speaker import SpeakerSim

            self.sim = SpeakerSim(config.sim, checkpoint=config.sim_path, device=config.device)
        if "dnsmos" in config.metrics:
            from ttsrl.score.quality import DNSMOS

            self.dnsmos = DNSMOS()
        if "emo" in config.metrics:
            from ttsrl.score.emotion import EmotionJudge

            self.emo = EmotionJudge.load(config.emo_judge)

    def _sim_references(self, test_set: EvalSet, hyp: Hypotheses) -> tuple[dict[str, Spec], str | None]:
        if self.sim is None:
            return {}, None
        if test_set.prompt_source is not None:
            return {it.utt: it.prompt for it in test_set.items if it.prompt}, test_set.prompt_source
        if hyp.ground_truth:
            logger.warning(
                "sim: %s has no prompts and the audio scored is its own: sim skipped", test_set.source
            )
            return {}, None
        logger.info(
            "sim: %s has no prompt.scp; the reference is the ground-truth audio (wav.scp)", test_set.source
        )
        return {it.utt: it.audio for it in test_set.items if it.audio}, "wav.scp"

    def score(self, test_set: EvalSet, hyp: Hypotheses) -> tuple[list[dict], dict]:
        """Per-utterance rows and the summary metrics of one test set."""
        from tqdm import tqdm

        cfg = self.config
        refs, ref_source = self._sim_references(test_set, hyp)
        ref_cache: dict[Spec, np.ndarray | None] = {}
        rows: list[dict] = []
        missing: dict[str, str] = {}
        bar = tqdm(total=len(test_set.items), desc=f"score {test_set.name}", unit="utt", dynamic_ncols=True)
        for start in range(0, len(test_set.items), cfg.batch_size):
            chunk = test_set.items[start : start + cfg.batch_size]
            loaded: list[tuple[EvalItem, np.ndarray]] = []
            for it in chunk:
                spec = hyp.specs.get(it.utt)
                if spec is None:
                    missing[it.utt] = hyp.reasons.get(it.utt, "missing")
                    rows.append({"utt": it.utt, "status": "missing", "ref": it.text, "note": missing[it.utt]})
                    continue
                try:
                    loaded.append((it, _load(spec)))
                except AudioError as e:
                    if cfg.strict:
                        raise ScoreError(f"{it.utt}: {e}") from None
                    missing[it.utt] = f"unreadable: {e}"
                    logger.warning("%s: %s", it.utt, missing[it.utt])
                    rows.append({"utt": it.utt, "status": "corrupt", "ref": it.text, "note": missing[it.utt]})
            hyps_text = (
                self.judge.transcribe([w for _, w in loaded], SAMPLE_RATE) if self.judge and loaded else []
            )
            nlls = (
                self.judge.ctc_nll([w for _, w in loaded], SAMPLE_RATE, [it.text for it, _ in loaded])
                if "nll" in cfg.metrics and loaded else []
            )  # fmt: skip
            for i, (it, wav) in enumerate(loaded):
                row: dict = {"utt": it.utt, "status": "ok", "ref": it.text}
                if nlls:
                    row["nll"] = nlls[i] if math.isfinite(nlls[i]) else None
                    if row["nll"] is None:
                        row["note"] = "nll: empty text, or more characters than CTC frames"
                if self.judge is not None:
                    row["hyp"] = hyps_text[i]
                    row["_werc"] = utterance_errors(it.text, row["hyp"], cfg.lang, "word")
                    row["_cerc"] = utterance_errors(it.text, row["hyp"], cfg.lang, "char")
                    row["wer"], row["cer"] = 100 * row["_werc"].rate, 100 * row["_cerc"].rate
                if self.sim is not None and it.utt in refs:
                    row["sim"] = self._similarity(wav, refs[it.utt], ref_cache, row)
                f0 = None  # one F0 track for F0 variance and the emotion judge
                if "f0v" in cfg.metrics or self.emo is not None:
                    from ttsrl.feats.f0 import compute_f0, f0_variance_from_f0

                    f0 = compute_f0(wav, SAMPLE_RATE)
                if "f0v" in cfg.metrics:
                    row["f0v"] = f0_variance_from_f0(*f0)
                if self.dnsmos is not None:
                    mos = self.dnsmos.score(wav, SAMPLE_RATE)
                    row["dnsmos"] = mos["ovrl"]
                    row.update({f"dnsmos_{k}": mos[k] for k in ("sig", "bak", "p808")})
                if self.emo is not None:
                    self._emotion(wav, f0, it, row)
                rows.append(row)
            bar.update(len(chunk))
        bar.close()
        order = {it.utt: i for i, it in enumerate(test_set.items)}
        rows.sort(key=lambda r: order[r["utt"]])
        return rows, self._summary(rows, len(test_set.items), missing, ref_source)

    def _similarity(self, wav: np.ndarray, ref: Spec, cache: dict, row: dict) -> float | None:
        if ref not in cache:
            try:
                cache[ref] = self.sim.embed(_load(ref), SAMPLE_RATE)
            except AudioError as e:
                if self.config.strict:
                    raise ScoreError(f"prompt of {row['utt']}: {e}") from None
                logger.warning("%s: prompt unreadable, no sim: %s", row["utt"], e)
                cache[ref] = None
        if cache[ref] is None:
            row["note"] = "prompt unreadable"
            return None
        return self.sim.cosine(self.sim.embed(wav, SAMPLE_RATE), cache[ref])

    def _emotion(self, wav: np.ndarray, f0: tuple[np.ndarray, np.ndarray], it: EvalItem, row: dict) -> None:
        from ttsrl.score.emotion import emotion_features

        try:
            row["emo_pred"] = self.emo.predict(emotion_features(wav, SAMPLE_RATE, self.emo.mel, f0)[None])[0]
        except ValueError as e:  # too short to classify: counted as not judged
            row["note"] = f"emo: {e}"
            return
        if it.emotion is not None:
            row["emo_ok"] = 100.0 * (row["emo_pred"] == it.emotion)

    def _summary(
        self, rows: list[dict], n_utts: int, missing: dict[str, str], ref_source: str | None
    ) -> dict:
        ok = [r for r in rows if r["status"] == "ok"]
        metrics: dict[str, float | int] = {"n_utts": n_utts, "n_missing": len(missing)}
        if self.judge is not None and ok:
            werc: list[ErrorCounts] = [r["_werc"] for r in ok]
            cerc: list[ErrorCounts] = [r["_cerc"] for r in ok]
            if "wer" in self.config.metrics:
                metrics.update(summarize(werc, "wer"))
            if "cer" in self.config.metrics:
                metrics.update(summarize(cerc, "cer"))
        for name in ("sim", "f0v", "nll", "dnsmos", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"):
            value = _nanmean([r.get(name) for r in ok])
            if value is not None:
                metrics[name] = value
        emo_acc = _nanmean([r.get("emo_ok") for r in ok])
        if emo_acc is not None:
            metrics["emo_acc"] = emo_acc
        judged = [r["emo_pred"] for r in ok if "emo_pred" in r]
        if self.emo is not None and judged:
            for label in self.emo.labels:
                metrics[f"emo_share@{label}"] = 100.0 * judged.count(label) / len(judged)
        return {"metrics": metrics, "missing": missing, "sim_reference": ref_source}


def _tsv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("\t", " ").replace("\n", " ")


def write_outputs(out_dir: str, rows: list[dict], result: dict) -> None:
    """``per_utt.tsv``, ``result.json`` and (when any) ``missing.txt`` in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    cols = ["utt", "status", "ref", "hyp", "wer", "cer", "sim", "f0v", "nll", "dnsmos", "dnsmos_sig", "dnsmos_bak",
            "dnsmos_p808", "emo_pred", "emo_ok", "note"]  # fmt: skip
    cols = [c for c in cols if c in ("utt", "status", "ref", "note") or any(c in r for r in rows)]
    lines = ["\t".join(cols)] + ["\t".join(_tsv_cell(r.get(c)) for c in cols) for r in rows]
    atomic_write_text(os.path.join(out_dir, "per_utt.tsv"), "\n".join(lines) + "\n")
    atomic_write_text(
        os.path.join(out_dir, "result.json"), json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    )
    if result["missing"]:
        text = "".join(f"{u} {why}\n" for u, why in result["missing"].items())
        atomic_write_text(os.path.join(out_dir, "missing.txt"), text)


def results_metrics(metrics: dict, judge_tag: str | None) -> dict:
    """The names stored in results.json: WER/CER qualified as ``wer@<judge_tag>`` when tagged."""
    if not judge_tag:
        return dict(metrics)
    return {(f"{k}@{judge_tag}" if k.split("_")[0] in ASR_METRICS else k): v for k, v in metrics.items()}


def run_scoring(
    test_set: EvalSet,
    out_dir: str,
    config: ScoreConfig,
    wav_dir: str | None = None,
    wav_scp: str | None = None,
    results: str | None = None,
    model_tag: str | None = None,
    test_set_name: str | None = None,
) -> dict:
    """Score ``test_set``, write ``out_dir/{per_utt.tsv,result.json}``, log a line per metric
    and, given ``results``, merge the metrics into it; returns the result dict."""
    hyp = find_hypotheses(test_set, wav_dir, wav_scp)
    if hyp.ground_truth:
        if model_tag not in (None, GROUND_TRUTH):
            raise ScoreError(
                f"no --wav_dir/--wav_scp: the test set's own audio is scored, which is --model_tag {GROUND_TRUTH}, "
                f"not {model_tag!r}"
            )
        model_tag = GROUND_TRUTH
    elif model_tag == GROUND_TRUTH:
        raise ScoreError(
            f"--model_tag {GROUND_TRUTH} scores the test set's own audio: omit --wav_dir/--wav_scp"
        )
    test_set_name = test_set_name or test_set.name
    if hyp.extra:
        logger.info(
            "%d wav(s) not in %s ignored: %s", len(hyp.extra), test_set.source, summarize_ids(hyp.extra)
        )
    if config.strict and hyp.reasons:
        raise ScoreError(f"{len(hyp.reasons)} missing wav(s): " + "; ".join(list(hyp.reasons.values())[:5]))
    # a model without audio has no score: scoring it would put a row of empty means in the results
    audio = wav_dir or wav_scp
    if not hyp.ground_truth and hyp.specs and len(hyp.reasons) == len(hyp.specs):
        raise ScoreError(f"{audio}: none of the {len(hyp.specs)} utterances of {test_set.source} has audio; "
                         "nothing to score (did its synthesis fail? its reasons are in the errors file beside it)")
    rows, summary = Scorer(config).score(test_set, hyp)
    m = summary["metrics"]
    if not hyp.ground_truth and m["n_utts"] and m["n_missing"] >= m["n_utts"]:
        raise ScoreError(f"{audio}: none of the {m['n_utts']} utterances of {test_set.source} has readable "
                         "audio; nothing to score")
    for r in rows:  # alignment counts are internal
        r.pop("_werc", None)
        r.pop("_cerc", None)
    result = {
        "model_tag": model_tag,
        "test_set": test_set_name,
        "source": os.path.abspath(test_set.source),
        "audio": "ground truth" if hyp.ground_truth else os.path.abspath(wav_dir or wav_scp),
        **summary,
        "extra": hyp.extra,
        "config": asdict(config),
    }
    write_outputs(out_dir, rows, result)
    _log_summary(result, config)
    if results:
        if not model_tag:
            raise ScoreError("--results needs --model_tag")
        update_results(
            results, model_tag, test_set_name, results_metrics(summary["metrics"], config.judge_tag)
        )
        logger.info("merged into %s as %s/%s", results, model_tag, test_set_name)
    return result


def _log_summary(result: dict, config: ScoreConfig) -> None:
    m, tag = result["metrics"], f"{result['model_tag'] or '-'}/{result['test_set']}"
    scored = m["n_utts"] - m["n_missing"]
    for name in ("wer", "cer"):
        if name in m:
            logger.info("%s %s = %.2f %% (mean of %d utterances; corpus %.2f %%) [%s]",
                        tag, name, m[name], scored, m[f"{name}_corpus"], config.judge)  # fmt: skip
    for name in ("sim", "f0v", "nll", "dnsmos", "emo_acc"):
        if name in m:
            logger.info("%s %s = %.4f", tag, name, m[name])
    logger.info("%s n_utts = %d, n_missing = %d", tag, m["n_utts"], m["n_missing"])
    if result["missing"]:
        logger.warning("%s: %d missing or unreadable wav(s): %s", tag, len(result["missing"]),
                       summarize_ids(list(result["missing"])))  # fmt: skip
