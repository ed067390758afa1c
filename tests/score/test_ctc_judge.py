"""The registered ``ctc`` judge, the scorer's ``nll`` metric and ttsrl.bin.score_all (stage 9)."""

import json
import math

import numpy as np
import pytest
import torch

from ttsrl.data.toy import make_toy_data_dir
from ttsrl.models.asr import CTCASR, CTCASRConfig, asr_conf_dict
from ttsrl.score.asr import ASR_JUDGES, JudgeUnavailable, build_asr_judge
from ttsrl.text.tokenizer import build_token_list


@pytest.fixture(scope="module")
def judge_path(tmp_path_factory):
    """An untrained tiny judge saved as the trainer saves model.pt (weights + model_conf)."""
    torch.manual_seed(0)
    conf = CTCASRConfig(token_list=build_token_list("char", ["hello world", "the cat sat"]), d_model=32,
                        n_heads=2, d_ff=64, n_layers=1, conv_kernel=3)
    model = CTCASR(conf)
    path = tmp_path_factory.mktemp("judge") / "model.pt"
    torch.save({"model": model.state_dict(), "config": {"model_conf": asr_conf_dict(conf)}}, path)
    return str(path)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_data_dir(tmp_path_factory.mktemp("data") / "test", duration=0.6)


def test_ctc_judge_loads_and_transcribes(judge_path):
    assert "ctc" in ASR_JUDGES
    judge = build_asr_judge("ctc", path=judge_path)
    rng = np.random.default_rng(0)
    wavs = [0.1 * rng.standard_normal(8000).astype(np.float32), 0.1 * rng.standard_normal(12000).astype(np.float32)]
    hyps = judge.transcribe(wavs, 16000)
    assert len(hyps) == 2 and all(isinstance(h, str) for h in hyps)
    assert judge.transcribe(wavs, 16000) == hyps
    assert len(judge.transcribe([wavs[0]], 22050)) == 1
    nll = judge.ctc_nll(wavs, 16000, ["hello", "the cat"])
    assert all(math.isfinite(v) and v > 0 for v in nll)
    with pytest.raises(JudgeUnavailable, match="train_asr"):
        build_asr_judge("ctc")
    with pytest.raises(FileNotFoundError):
        build_asr_judge("ctc", path=judge_path + ".missing")


def test_scorer_nll(judge_path, toy, tmp_path):
    from ttsrl.score.scorer import ScoreConfig, ScoreError, Scorer, load_test_set, run_scoring

    out = tmp_path / "score"
    result = run_scoring(load_test_set(data_dir=toy), str(out),
                         ScoreConfig(metrics=("wer", "cer", "nll"), judge="ctc", judge_path=judge_path),
                         results=str(tmp_path / "results.json"), model_tag="ground_truth")
    m = result["metrics"]
    assert m["n_utts"] == 6 and m["n_missing"] == 0 and math.isfinite(m["nll"]) and "cer" in m
    assert "nll" in (out / "per_utt.tsv").read_text().splitlines()[0].split("\t")
    stored = json.loads((tmp_path / "results.json").read_text())["ground_truth"]["test"]
    assert stored["nll"] == pytest.approx(m["nll"])
    with pytest.raises(ScoreError, match="CTC judge"):
        Scorer(ScoreConfig(metrics=("wer", "nll"), judge="pocketsphinx"))
    assert ScoreConfig().metrics == ("wer", "cer", "sim", "f0v", "dnsmos")  # nll is not a default


def test_score_all(judge_path, toy, tmp_path):
    from ttsrl.bin import score_all

    data_root = str(__import__("pathlib").Path(toy).parent)
    exp = tmp_path / "exp"
    dec = exp / "base" / "decode" / "test"
    dec.mkdir(parents=True)
    (dec / "wav.scp").write_text((__import__("pathlib").Path(toy) / "wav.scp").read_text())
    argv = ["--data_root", data_root, "--exp_dir", str(exp), "--test_sets", "test", "--judge_path", judge_path,
            "--metrics", "wer,cer,f0v,nll", "--second_judge", "none"]
    assert score_all.main(argv) == 0
    results = json.loads((exp / "results.json").read_text())
    assert set(results) == {"ground_truth", "base"}
    assert {"cer", "wer", "nll", "per", "f0v"} <= set(results["ground_truth"]["test"])
    assert (exp / "ground_truth" / "test" / "score" / ".done").is_file()
    assert (dec / "score" / ".done").is_file() and (dec / "score" / "per_utt.tsv").is_file()
    mtime = (exp / "results.json").stat().st_mtime_ns
    assert score_all.main(argv) == 0  # everything is done: nothing is scored again
    assert (exp / "results.json").stat().st_mtime_ns == mtime
    assert score_all.main([*argv[:5], "missing", *argv[6:]]) == 1


def test_score_all_jobs_split_the_folders_and_share_results(judge_path, toy, tmp_path):
    from pathlib import Path

    from ttsrl.bin import score_all

    exp = tmp_path / "exp"
    dec = exp / "base" / "decode" / "test"
    dec.mkdir(parents=True)
    (dec / "wav.scp").write_text((Path(toy) / "wav.scp").read_text())
    argv = ["--data_root", str(Path(toy).parent), "--exp_dir", str(exp), "--test_sets", "test", "--judge_path",
            judge_path, "--metrics", "wer,cer", "--gt_metrics", "wer,cer", "--second_judge", "none", "--per", "false",
            "--num_jobs", "2", "--num_threads", "1"]
    assert score_all.main([*argv, "--job", "2"]) == 0  # the second folder: base
    assert (dec / "score" / ".done").is_file() and not (exp / "ground_truth").exists()
    assert score_all.main([*argv, "--job", "1"]) == 0  # the first: the ground truth
    results = json.loads((exp / "results.json").read_text())
    assert set(results) == {"ground_truth", "base"} and "cer" in results["base"]["test"]
    assert score_all.main([*argv, "--job", "3"]) == 1


def test_decoded_models_score_a_linked_iteration_once(tmp_path):
    from ttsrl.bin.score_all import decoded_models

    for m in ("base", "speechalign_iter1", "speechalign_iter2"):
        (tmp_path / m / "decode" / "test").mkdir(parents=True)
        (tmp_path / m / "decode" / "test" / "wav.scp").write_text("u /x.wav\n")
    (tmp_path / "speechalign").symlink_to("speechalign_iter2")
    assert [m for m, _ in decoded_models(str(tmp_path), "test")] == ["base", "speechalign", "speechalign_iter1"]
