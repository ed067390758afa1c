"""train_lm and sample_lm on a toy token dir: train, resume-free rerun, sample with prompts."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ttsrl.bin import sample_lm, train_lm
from ttsrl.data.arrays import read_scp, write_ark_scp
from ttsrl.data.datadir import read_kv, write_kv
from ttsrl.models.codec_lm import load_codec_lm
from ttsrl.score.lm_kl import lm_kl as lm_kl_of
from ttsrl.text.tokenizer import write_token_list


def make_token_dir(path, n=12, seed=0, prompts=False):
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    utts = [f"spk{i % 3}-u{i:03d}" for i in range(n)]
    text = {u: " ".join(str(x) for x in rng.integers(2, 9, rng.integers(3, 7))) for u in utts}
    # speech tokens follow the text: each text id t becomes two codes (t, t + 10)
    speech = {u: np.array([c for t in text[u].split() for c in (int(t), int(t) + 10)], dtype=np.int32) for u in utts}
    write_kv(path / "text", text)
    write_ark_scp(path / "speech.ark", path / "speech.scp", sorted(speech.items()))
    if prompts:
        write_kv(path / "prompt_text", {u: "2 3" for u in utts})
        write_ark_scp(path / "prompt_speech.ark", path / "prompt_speech.scp",
                      [(u, np.array([2, 12, 3, 13], dtype=np.int32)) for u in sorted(utts)])
    return path


@pytest.fixture
def lm_dir(tmp_path):
    train = make_token_dir(tmp_path / "train", n=24)
    dev = make_token_dir(tmp_path / "dev", n=6, seed=1)
    tokens = tmp_path / "tokens.txt"
    write_token_list(tokens, ["<blank>", "<unk>"] + [f"t{i}" for i in range(2, 9)] + ["<sos/eos>"])
    exp = tmp_path / "exp"
    train_lm.main(["--train_dir", str(train), "--valid_dir", str(dev), "--token_list", str(tokens),
                   "--speech_vocab_size", "20", "--exp_dir", str(exp), "--max_steps", "30", "--max_epochs", "0",
                   "--lr", "3e-3", "--max_tokens", "200", "--progress", "false", "--tensorboard", "false",
                   "--model_conf", "{d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, dropout: 0.0, max_len: 64}"])
    return exp, tmp_path


def test_train_lm_writes_model_and_metrics(lm_dir):
    exp, _ = lm_dir
    metrics = json.loads((exp / "metrics.json").read_text())
    assert 0.0 <= metrics["dev_token_acc"] <= 1.0 and metrics["dev_tokens"] > 0
    assert metrics["dev_token_acc"] > 0.2  # the toy mapping is learnable; chance is 1/21
    model = load_codec_lm(str(exp / "model.pt"))
    assert model.config.text_vocab_size == 10 and model.config.speech_vocab_size == 20


def test_sample_lm_with_prompts_and_jobs(lm_dir):
    exp, tmp = lm_dir
    test = make_token_dir(tmp / "test", n=5, seed=2, prompts=True)
    out = tmp / "samples"
    args = ["--lm", str(exp / "model.pt"), "--token_dir", str(test), "--out_dir", str(out),
            "--num_candidates", "3", "--top_k", "5", "--batch_size", "2", "--max_len_ratio", "4"]
    for job in (1, 2):
        sample_lm.main(args + ["--job", str(job), "--num_jobs", "2"])
    keys = set()
    for job in (1, 2):
        toks = read_scp(str(out / f"tokens.{job}.scp"))
        lp = read_kv(out / f"logprobs.{job}")
        assert set(toks.keys()) == set(lp)
        keys |= set(toks.keys())
    utts = read_kv(test / "text")
    assert keys == {f"{u}-c{k}" for u in utts for k in range(3)}
    sample_lm.main(args + ["--out_dir", str(tmp / "again"), "--job", "1", "--num_jobs", "2"])
    a, b = read_scp(str(out / "tokens.1.scp")), read_scp(str(tmp / "again" / "tokens.1.scp"))
    assert all(np.array_equal(a[k], b[k]) for k in a.keys())  # deterministic


def test_train_lm_keeps_its_text_units(tmp_path):
    """The exp dir gets the training dir's tokens.txt and token_type; the config records text_token_type."""
    from ttsrl.utils.checkpoint import load_checkpoint

    tokens = ["<blank>", "<unk>"] + [f"p{i}" for i in range(2, 9)] + ["<sos/eos>"]
    dirs = [make_token_dir(tmp_path / "train", n=8), make_token_dir(tmp_path / "dev", n=3, seed=1)]
    for d in dirs:  # a phoneme token dir (stage 3 with --text_token_type phn)
        write_token_list(d / "tokens.txt", tokens)
        (d / "token_type").write_text("phn\n")
    common = ["--train_dir", str(dirs[0]), "--valid_dir", str(dirs[1]), "--speech_vocab_size", "20",
              "--max_steps", "1", "--max_epochs", "0", "--max_tokens", "200", "--progress", "false",
              "--tensorboard", "false", "--model_conf", "{d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, max_len: 64}"]
    exp = tmp_path / "exp"
    train_lm.main([*common, "--exp_dir", str(exp)])  # --token_list: the training dir's
    assert (exp / "tokens.txt").read_text() == (dirs[0] / "tokens.txt").read_text()
    assert (exp / "token_type").read_text() == "phn\n"
    assert load_checkpoint(str(exp / "model.pt"))["config"]["text_token_type"] == "phn"
    assert load_codec_lm(str(exp / "model.pt")).config.text_vocab_size == len(tokens)
    with pytest.raises(ValueError, match="in phn units"):
        train_lm.main([*common, "--exp_dir", str(tmp_path / "a"), "--text_token_type", "bpe"])
    other = tmp_path / "other.txt"
    write_token_list(other, tokens[:-2] + tokens[-1:])
    with pytest.raises(ValueError, match="differs from"):
        train_lm.main([*common, "--exp_dir", str(tmp_path / "b"), "--token_list", str(other)])


@pytest.mark.parametrize("module", ["ttsrl.bin.train_lm", "ttsrl.bin.sample_lm"])
def test_help(module):
    assert subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True).returncode == 0


def test_lm_kl_is_zero_for_the_same_model_and_positive_otherwise(lm_dir, tmp_path):
    import torch

    from ttsrl.bin import lm_kl
    from ttsrl.score.results import load_results
    from ttsrl.utils.checkpoint import load_checkpoint

    exp, tmp = lm_dir
    test = make_token_dir(tmp / "kl_test", n=5, seed=3, prompts=True)
    same = lm_kl_of(load_codec_lm(str(exp / "model.pt")), load_codec_lm(str(exp / "model.pt")), str(test))
    assert abs(same["kl"]) < 1e-6 and same["n_utts"] == 5
    # the prompt is not scored: 5 utterances, each its speech tokens + <eos>
    speech = read_scp(str(test / "speech.scp"))
    assert same["kl_tokens"] == sum(len(v) + 1 for v in speech.values())
    ckpt = load_checkpoint(str(exp / "model.pt"))
    ckpt["model"] = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, tmp_path / "moved.pt")
    results = tmp_path / "results.json"
    iters = []
    for k, secs in enumerate((90.0, 30.0)):  # two iterations' training times: 2 minutes in all
        iters.append(tmp_path / f"iter{k}.json")
        iters[-1].write_text(json.dumps({"train_seconds": secs}))
    assert lm_kl.main(["--lm", str(tmp_path / "moved.pt"), "--ref_lm", str(exp / "model.pt"), "--token_dir", str(test),
                       "--results", str(results), "--model_tag", "dpo", "--test_set", "test",
                       "--train_metrics", *map(str, iters)]) == 0
    row = load_results(results)["dpo"]["test"]
    assert row["kl"] > 1e-4 and row["train_min"] == pytest.approx(2.0)
    iters[0].write_text("{}")
    with pytest.raises(SystemExit, match="iter0.json: no train_seconds"):
        lm_kl.main(["--lm", str(tmp_path / "moved.pt"), "--ref_lm", str(exp / "model.pt"), "--token_dir", str(test),
                    "--train_metrics", str(iters[0])])


def test_prompted_training_and_init_model(lm_dir):
    exp, tmp = lm_dir
    train, dev = tmp / "train", tmp / "dev_prompted"
    make_token_dir(dev, n=6, seed=1, prompts=True)
    write_kv(tmp / "utt2spk", {u: u.split("-")[0] for u in read_kv(train / "text")})
    out = tmp / "exp_prompted"
    train_lm.main([
        "--train_dir", str(train), "--valid_dir", str(dev), "--token_list", str(tmp / "tokens.txt"),
        "--speech_vocab_size", "20", "--exp_dir", str(out), "--max_steps", "2", "--max_epochs", "0",
        "--max_tokens", "200", "--progress", "false", "--tensorboard", "false", "--utt2spk", str(tmp / "utt2spk"),
        "--prompt_prob", "1.0", "--lr", "1e-9", "--init_model", str(exp / "model.pt"),
        "--model_conf", "{d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, dropout: 0.0, max_len: 64}"])
    metrics = json.loads((out / "metrics.json").read_text())
    # dev is read with its prompts: only the target tokens (+ <eos>) are scored
    speech = read_scp(str(dev / "speech.scp"))
    assert metrics["dev_tokens"] == sum(len(v) + 1 for v in speech.values())
    # started from the trained model (lr ~0: the weights did not move)
    import torch

    a, b = load_codec_lm(str(exp / "model.pt")), load_codec_lm(str(out / "model.pt"))
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_rope_lm_measures_its_position_rate(lm_dir, tmp_path):
    exp, tmp = lm_dir
    out = tmp_path / "exp_rope"
    train_lm.main(["--train_dir", str(tmp / "train"), "--valid_dir", str(tmp / "dev"),
                   "--token_list", str(tmp / "tokens.txt"), "--speech_vocab_size", "20", "--exp_dir", str(out),
                   "--max_steps", "30", "--max_epochs", "0", "--lr", "3e-3", "--max_tokens", "200",
                   "--progress", "false", "--tensorboard", "false",
                   "--model_conf", "{d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, dropout: 0.0, max_len: 64, "
                                   "position: rope}"])
    model = load_codec_lm(str(out / "model.pt"))
    assert model.config.position == "rope" and model.config.speech_pos_rate == 0.5  # two codes per text token
    assert json.loads((out / "metrics.json").read_text())["dev_token_acc"] > 0.2


def test_lm_prompt_false_reads_the_text_alone(lm_dir):
    """--lm_prompt false means the same in sample_lm and lm_kl: the LM reads the set as if it had no prompts."""
    import shutil

    exp, tmp = lm_dir
    prompted = make_token_dir(tmp / "prompted", n=4, seed=3, prompts=True)
    plain = tmp / "plain"
    shutil.copytree(prompted, plain)
    for name in ("prompt_text", "prompt_speech.scp", "prompt_speech.ark"):
        (plain / name).unlink()
    outs = {}
    for name, token_dir, extra in (("off", prompted, ["--lm_prompt", "false"]), ("plain", plain, []),
                                   ("on", prompted, [])):
        outs[name] = tmp / f"samples_{name}"
        sample_lm.main(["--lm", str(exp / "model.pt"), "--token_dir", str(token_dir), "--out_dir", str(outs[name]),
                        "--num_candidates", "2", "--top_k", "5", "--max_len_ratio", "4", *extra])
    off, plain_s, on = (read_scp(str(outs[n] / "tokens.scp")) for n in ("off", "plain", "on"))
    assert all(np.array_equal(off[k], plain_s[k]) for k in plain_s.keys())
    assert read_kv(outs["off"] / "logprobs") == read_kv(outs["plain"] / "logprobs") != read_kv(outs["on"] / "logprobs")
    lm = load_codec_lm(str(exp / "model.pt"))
    assert lm_kl_of(lm, lm, str(prompted), lm_prompt=False)["kl_tokens"] == lm_kl_of(lm, lm, str(plain))["kl_tokens"]
    assert lm_kl_of(lm, lm, str(prompted))["kl_tokens"] == lm_kl_of(lm, lm, str(plain))["kl_tokens"]  # prompts masked


def test_train_lm_lm_prompt_false_trains_and_validates_on_the_text_alone(lm_dir):
    """train_lm --lm_prompt false: no prompted training items whatever --utt2spk and --prompt_prob say, and the
    valid set read without its prompts (the layout sample_lm --lm_prompt false reads)."""
    import argparse

    from ttsrl.tasks.lm import LMTask

    _, tmp = lm_dir
    dev = make_token_dir(tmp / "dev_p", n=6, seed=1, prompts=True)
    write_kv(tmp / "utt2spk", {u: u.split("-")[0] for u in read_kv(tmp / "train" / "text")})
    for lm_prompt in (True, False):
        args = argparse.Namespace(train_dir=str(tmp / "train"), valid_dir=str(dev), utt2spk=str(tmp / "utt2spk"),
                                  prompt_prob=1.0, seed=0, model_conf={"max_len": 64}, lm_prompt=lm_prompt)
        train, valid, collate = LMTask().build_datasets(args)
        assert (len(train.partner) > 0) == lm_prompt
        batch = collate([valid[i] for i in range(len(valid))])
        assert (int(batch["prompt_lens"].max()) > 0) == lm_prompt
