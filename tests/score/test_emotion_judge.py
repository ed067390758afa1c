"""The audio emotion judge: features, fit/predict, save/load, its CLI and the scorer's emo metrics."""

import json

import numpy as np
import pytest
import soundfile as sf

from ttsrl.bin import train_emotion_judge
from ttsrl.data.datadir import DataDirError
from ttsrl.score.emotion import EmotionJudge, emotion_features
from ttsrl.score.scorer import ScoreConfig, ScoreError, load_test_set, run_scoring

SR = 16000
# three "styles" that differ as espeak-ng's emotion styles do: pitch level, pitch movement, loudness, brightness
STYLES = {"calm": (120.0, 0.0, 0.3, 8), "excited": (230.0, 80.0, 0.6, 20), "sad": (95.0, 0.0, 0.08, 3)}


def voice(style, rng):
    """A noisy harmonic tone of 0.5-0.9 s in ``style``, with per-example jitter."""
    f0, glide, amp, n_harm = STYLES[style]
    n = int(SR * rng.uniform(0.5, 0.9))
    t = np.arange(n) / SR
    f = f0 * rng.uniform(0.9, 1.1) + glide * np.sin(2 * np.pi * 2.0 * t)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, n_harm + 1))
    x = amp * rng.uniform(0.8, 1.2) * x / np.abs(x).max()
    return (x + 0.003 * rng.standard_normal(n)).astype(np.float32)


def make_set(root, name, per_style, seed):
    rng = np.random.default_rng(seed)
    d = root / "data" / name
    d.mkdir(parents=True)
    utts = [(f"{s}-{name}-{i:02d}", s) for s in STYLES for i in range(per_style)]
    for utt, s in utts:
        sf.write(root / f"{utt}.wav", voice(s, rng), SR)
    (d / "wav.scp").write_text("".join(f"{u} {root / (u + '.wav')}\n" for u, _ in utts))
    (d / "text").write_text("".join(f"{u} a b c\n" for u, _ in utts))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u, _ in utts))
    (d / "utt2emo").write_text("".join(f"{u} {s}\n" for u, s in utts))
    return d


def test_features_fit_predict_and_save_load(tmp_path):
    rng = np.random.default_rng(0)
    train = [(s, voice(s, rng)) for s in STYLES for _ in range(10)]
    x = np.stack([emotion_features(w, SR) for _, w in train])
    assert x.shape == (30, 3 * 80 + 4) and np.isfinite(x).all()
    judge = EmotionJudge.fit(x, [s for s, _ in train])
    assert judge.labels == sorted(STYLES)
    test = [(s, voice(s, rng)) for s in STYLES for _ in range(4)]
    assert judge.predict_wavs([w for _, w in test], SR) == [s for s, _ in test]
    judge.save(str(tmp_path / "j" / "model.npz"))
    again = EmotionJudge.load(str(tmp_path / "j"))  # a folder finds its model.npz
    np.testing.assert_allclose(again.probs(x), judge.probs(x), rtol=1e-10)
    # 24 kHz input is resampled: the same tone gives the same emotion
    assert again.predict_wavs([np.interp(np.arange(0, len(test[0][1]), 2 / 3), np.arange(len(test[0][1])),
                                         test[0][1]).astype(np.float32)], 24000) == [test[0][0]]


def test_bad_inputs():
    with pytest.raises(ValueError, match="too short"):
        emotion_features(np.zeros(100, np.float32), SR)
    with pytest.raises(ValueError, match="two emotions"):
        EmotionJudge.fit(np.zeros((3, 4)), ["a", "a", "a"])
    with pytest.raises(FileNotFoundError, match="train_emotion_judge"):
        EmotionJudge.load("/nonexistent/model.npz")
    with pytest.raises(ScoreError, match="emotion judge"):
        ScoreConfig(metrics=("emo",))


def test_cli_and_scorer_metrics(tmp_path):
    train, dev = make_set(tmp_path, "train", 8, 1), make_set(tmp_path, "dev", 3, 2)
    out = tmp_path / "exp" / "emotion_judge"
    train_emotion_judge.main(["--train_data_dir", str(train), "--valid_data_dir", str(dev),
                              "--test_data_dirs", str(dev), "--out_dir", str(out)])
    m = json.loads((out / "metrics.json").read_text())
    assert m["labels"] == sorted(STYLES) and m["train_utts"] == 24 and m["valid_utts"] == 9
    assert m["valid_acc"] == 1.0 and m["dev_acc"] == 1.0 and np.trace(m["valid_confusion"]) == 9
    assert (out / "feats_train.npz").exists()  # features are cached for a second run
    # the scorer: ground-truth audio judged against utt2emo, and the share of each emotion
    config = ScoreConfig(metrics=("emo",), emo_judge=str(out / "model.npz"), sim="none")
    result = run_scoring(load_test_set(data_dir=str(dev)), str(tmp_path / "score"), config)
    metrics = result["metrics"]
    assert metrics["emo_acc"] == 100.0
    assert [metrics[f"emo_share@{s}"] for s in sorted(STYLES)] == pytest.approx([100 / 3] * 3)
    header, first = (tmp_path / "score" / "per_utt.tsv").read_text().splitlines()[:2]
    row = dict(zip(header.split("\t"), first.split("\t"), strict=True))
    assert row["emo_pred"] == row["utt"].split("-")[0] and float(row["emo_ok"]) == 100.0
    # a data dir without utt2emo is named in the error
    (dev / "utt2emo").unlink()
    with pytest.raises(DataDirError, match="no utt2emo"):
        train_emotion_judge.main(["--train_data_dir", str(dev), "--valid_data_dir", str(dev),
                                  "--out_dir", str(tmp_path / "x")])
