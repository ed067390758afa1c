"""The mini_en recipe end to end with tiny configs and a tiny corpus: every stage runs, a
second run does no work, and every stage's outputs exist.

The recipe folder is a copy made by egs/TEMPLATE/rl1/setup.sh in tmp_path that borrows
mini_en's local/ scripts, so the test never writes into the repository.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

TINY = [
    "--nj", "2", "--decode_nj", "2", "--test_sets", "test",
    "--local_data_opts", "--num_train 40 --num_dev 8 --num_test 6 --num_test_hard 4 --nj 2",
    "--tokenizer_config", f"{CONF}/tokenizer/tiny.yaml", "--lm_config", f"{CONF}/lm/tiny.yaml",
    "--flow_config", f"{CONF}/flow/tiny.yaml", "--judge_config", f"{CONF}/asr/tiny.yaml",
    "--reward_config", f"{CONF}/reward/tiny.yaml", "--align_config", f"{CONF}/align/tiny.yaml",
    "--align_set_size", "8", "--align_methods", "dpo speechalign raft coh diffro diffro_happy grpo", "--num_iters", "2",
    "--online_iters", "2 coh:1",
    "--num_candidates", "2", "--sample_args", "--top_k 5 --max_len_ratio 2",
    "--decode_args", "--top_k 5 --max_len_ratio 2 --flow_n_steps 2", "--score_metrics", "wer,cer,sim",
    "--flow_student", "dmo", "--speaker_config", f"{CONF}/speaker/tiny.yaml", "--dmo_config", f"{CONF}/dmo/tiny.yaml",
]


def run(recipe, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env, timeout=1800)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = tmp_path_factory.mktemp("egs") / "mini_en_tiny" / "rl1"
    subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), str(recipe)], check=True, capture_output=True)
    shutil.rmtree(recipe / "local")  # setup.sh wrote a local/data.sh stub: use mini_en's scripts instead
    (recipe / "local").symlink_to(ROOT / "egs/mini_en/rl1/local")
    (recipe / "run.sh").write_text((ROOT / "egs/mini_en/rl1/run.sh").read_text())
    (recipe / "run.sh").chmod(0o755)
    r = run(recipe, *TINY)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return recipe, r


def test_every_stage_wrote_its_outputs(recipe):
    recipe, _ = recipe
    for path in ["data/.stage1.done", "dump/feats/train/feats.scp", "exp/tokenizer/model.pt",
                 "dump/tokens/test/speech.scp", "exp/base/lm/model.pt", "exp/base/flow/model.pt",
                 "data/train_align/prompt.scp", "dump/tokens/train_align/prompt_speech.scp",
                 "exp/base/samples/train_align/tokens.scp", "exp/base/samples/dev/rewards.tsv",
                 "exp/reward/metrics.json", "exp/base/samples/train_align/pairs/best_worst/pairs.jsonl",
                 "exp/speechalign_iter2/samples/train_align/pairs/golden/pairs.jsonl",
                 "exp/speechalign/lm/model.pt", "exp/base/decode/test/wav.scp",
                 "exp/resynth/decode/test/wav.scp", "exp/judge/model.pt", "exp/RESULTS.md"]:
        assert (recipe / path).exists(), path
    results = json.loads((recipe / "exp/results.json").read_text())
    for tag in ("ground_truth", "resynth", "base", "dpo_iter1", "dpo", "speechalign_iter1", "speechalign", "raft_iter1",
                "raft", "coh", "diffro", "diffro_happy", "grpo"):
        assert "cer" in results[tag]["test"], (tag, results)
        # the audio emotion judge scores every row: its accuracy against utt2emo, the share of each emotion
        assert "emo_acc" in results[tag]["test"] and "emo_share@happy" in results[tag]["test"], (tag, results)
    em = json.loads((recipe / "exp/emotion_judge/metrics.json").read_text())
    assert {"train_acc", "valid_acc", "test_acc"} <= set(em) and "happy" in em["labels"], em
    assert "--target_emotion happy" in (recipe / "exp/diffro_happy/lm/log/train.log").read_text()
    # iteration 2 (SpeechAlign, and the online rounds of --online_iters) learns from, and validates on, the pairs
    # of its reference's (iteration 1's) samples; coh:1 overrides the 2 of the others, diffro is never iterated
    for method, mode in (("speechalign", "golden"), ("raft", "best"), ("dpo", "best_worst")):
        cmd = (recipe / f"exp/{method}_iter2/lm/log/train.log").read_text().splitlines()[0]
        assert f"--valid_pairs exp/{method}_iter2/samples/dev/pairs/{mode}/pairs.jsonl" in cmd, cmd
        assert f"--init_lm exp/{method}_iter1/lm/model.pt" in cmd, cmd
        assert os.readlink(recipe / f"exp/{method}") == f"{method}_iter2"
    for method in ("dpo", "raft", "coh", "diffro", "grpo"):  # the dev headroom of every aligned LM
        dev = results[method]["dev"]
        assert {"cer@tokenizer", "cer_best_of_n@tokenizer"} <= set(dev), (method, results[method])
        # the share of the gap is written when the base's best of N beats the base (tiny models: not always)
        base_cer = results["base"]["dev"]["cer@tokenizer"]
        assert ("headroom_captured" in dev) == (dev["cer_best_of_n@tokenizer"] < base_cer), (method, dev, base_cer)
    for method in ("coh", "diffro"):
        assert not (recipe / f"exp/{method}").is_symlink() and not (recipe / f"exp/{method}_iter1").exists()
    assert "coh_iter1" not in results
    # mini_en's --lm_prompt false: the LM never reads the prompt, the flow model still does
    for log in ("exp/base/lm/log/train.log", "exp/base/samples/dev/log/sample.1.log", "exp/dpo/lm/log/train.log",
                "exp/speechalign_iter2/samples/train_align/log/sample.1.log"):
        assert "--lm_prompt false" in (recipe / log).read_text().splitlines()[0], log
    for job in (1, 2):  # stage 8 synthesizes in --decode_nj 2 jobs of one thread, merged into wav.scp
        log = (recipe / f"exp/base/decode/test/log/synthesize.{job}.log").read_text()
        assert "--lm_prompt false" in log and f"--job {job} --num_jobs 2 --num_threads 1" in log
        assert (recipe / f"exp/base/decode/test/wav.{job}.scp").stat().st_size > 0
    wavs = (recipe / "exp/base/decode/test/wav.scp").read_text().splitlines()
    errors = (recipe / "exp/base/decode/test/errors").read_text().splitlines()
    assert len(wavs) + len(errors) == 6 and len(wavs) > 0 and wavs == sorted(wavs), (wavs, errors)
    assert "kl" in results["dpo"]["test"] and "kl" not in results["base"]["test"]
    # the last iteration's training time includes the first's
    assert results["speechalign"]["test"]["train_min"] > results["speechalign_iter1"]["test"]["train_min"] > 0
    assert results["raft"]["test"]["train_min"] > results["raft_iter1"]["test"]["train_min"] > 0
    rm = json.loads((recipe / "exp/reward/metrics.json").read_text())
    assert {"ctc_cer", "emo_acc", "gender_acc", "spearman_vs_judge"} <= set(rm), rm
    assert rm["metrics_set"] == "test" and rm["ctc_cer"] == rm["ctc_cer_test"], rm  # golden test tokens
    # --flow_student dmo: the speaker encoder, the student, and the rows of golden and base tokens through it
    assert "dev_eer" in json.loads((recipe / "exp/base/speaker/metrics.json").read_text())
    dm = json.loads((recipe / "exp/base/flow_dmo/metrics.json").read_text())
    assert {"student_cer", "teacher_cer", "student_sim", "speedup"} <= set(dm), dm
    for tag in ("resynth_dmo", "base_dmo"):
        assert "cer" in results[tag]["test"], (tag, results)
        log = (recipe / f"exp/{tag}/decode/test/log/synthesize.1.log").read_text()
        assert ("--flow exp/base/flow_dmo/student/model.pt --flow_solver renoise --flow_n_steps 2 --flow_cfg_scale 0"
                in log), log[:2000]
    assert "--flow exp/base/flow/model.pt" in (recipe / "exp/base/decode/test/log/synthesize.1.log").read_text()
    tm = json.loads((recipe / "exp/tokenizer/metrics.json").read_text())
    assert "ctc_cer" in tm and "codebook_perplexity" in tm
    assert "dev_token_acc" in json.loads((recipe / "exp/base/lm/metrics.json").read_text())


def test_second_run_does_no_work(recipe):
    recipe, _ = recipe
    r = run(recipe, *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "training" not in r.stdout and "synthesizing" not in r.stdout
    assert r.stdout.count("exists; skipping") >= 8


def test_another_iteration_count_is_refused(recipe):
    recipe, _ = recipe
    r = run(recipe, *TINY, "--stage", "7", "--stop_stage", "7", "--online_iters", "1")
    assert r.returncode != 0 and "exp/dpo is from a run with another number of iterations" in r.stderr, r.stderr
    assert os.readlink(recipe / "exp/dpo") == "dpo_iter2"  # nothing was touched
