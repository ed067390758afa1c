"""ttsrl.score.scorer without judges: test sets, hypothesis lookup, unreadable audio, result names."""

import numpy as np
import pytest
import soundfile as sf

from ttsrl.data.audio import AudioError
from ttsrl.score.scorer import (
    EvalSet,
    ScoreConfig,
    ScoreError,
    _load,
    find_hypotheses,
    load_test_set,
    results_metrics,
    run_scoring,
)


def make_data_dir(root, utts, with_prompts=True):
    d = root / "data" / "test"
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{u} text of {u}\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} spk\n" for u in utts))
    (d / "wav.scp").write_text("".join(f"{u} {root / (u + '.wav')}\n" for u in utts))
    if with_prompts:
        (d / "prompt.scp").write_text("".join(f"{u} {root / 'prompt.wav'}\n" for u in utts))
    return d


def test_load_test_set_and_ground_truth_mode(tmp_path):
    ts = load_test_set(data_dir=str(make_data_dir(tmp_path, ["a", "b"])))
    assert ts.name == "test" and ts.prompt_source == "prompt.scp"
    assert [it.utt for it in ts.items] == ["a", "b"] and ts.items[0].text == "text of a"
    hyp = find_hypotheses(ts)
    assert hyp.ground_truth and hyp.specs["a"] == (str(tmp_path / "a.wav"), None)
    with pytest.raises(ScoreError, match="exactly one"):
        load_test_set()


def test_wav_scp_missing_and_extra(tmp_path):
    ts = load_test_set(data_dir=str(make_data_dir(tmp_path, ["a", "b"], with_prompts=False)))
    assert ts.prompt_source is None
    scp = tmp_path / "hyp.scp"
    scp.write_text(f"a {tmp_path / 'x.wav'}\nzz {tmp_path / 'y.wav'}\n")
    hyp = find_hypotheses(ts, wav_scp=str(scp))
    assert hyp.specs["b"] is None and "not in" in hyp.reasons["b"] and hyp.extra == ["zz"]
    with pytest.raises(ScoreError, match="not found"):
        find_hypotheses(ts, wav_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ScoreError, match="no audio of its own"):
        find_hypotheses(EvalSet("x", [], None))


def test_empty_and_nan_audio_are_unreadable(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty audio"):
        _load((str(tmp_path / "empty.wav"), None))
    sf.write(tmp_path / "nan.wav", np.full(100, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        _load((str(tmp_path / "nan.wav"), None))
    sf.write(tmp_path / "ok.wav", np.zeros(800, dtype=np.float32), 8000)
    assert _load((str(tmp_path / "ok.wav"), None)).shape == (1600,)  # resampled to 16 kHz


def test_config_and_result_names():
    assert ScoreConfig(sim="none").metrics == ("wer", "cer", "f0v", "dnsmos")
    with pytest.raises(ScoreError, match="unknown metric"):
        ScoreConfig(metrics=("bleu",))
    m = {"wer": 1.0, "wer_corpus": 2.0, "cer": 3.0, "sim": 0.5, "n_utts": 3}
    assert results_metrics(m, None) == m
    assert results_metrics(m, "pocketsphinx") == {
        "wer@pocketsphinx": 1.0, "wer_corpus@pocketsphinx": 2.0, "cer@pocketsphinx": 3.0, "sim": 0.5, "n_utts": 3,
    }  # fmt: skip


def test_a_model_without_audio_is_refused(tmp_path):
    """Stage 9 must not score a model whose synthesis wrote nothing (issue 29): no row of empty means."""
    ts = load_test_set(data_dir=str(make_data_dir(tmp_path, ["a", "b"], with_prompts=False)))
    empty = tmp_path / "wav.scp"
    empty.write_text("")
    config = ScoreConfig(metrics=("f0v",), judge="none", sim="none")
    results = tmp_path / "results.json"
    with pytest.raises(ScoreError, match=r"wav.scp: none of the 2 utterances .* has audio; nothing to score"):
        run_scoring(ts, str(tmp_path / "score"), config, wav_scp=str(empty), results=str(results), model_tag="m")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not a wav")  # listed, but unreadable
    unreadable = tmp_path / "bad.scp"
    unreadable.write_text(f"a {tmp_path / 'bad.wav'}\nb {tmp_path / 'bad.wav'}\n")
    with pytest.raises(ScoreError, match="none of the 2 utterances .* has readable audio"):
        run_scoring(ts, str(tmp_path / "score"), config, wav_scp=str(unreadable), results=str(results), model_tag="m")
    assert not results.exists()
