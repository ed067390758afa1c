"""train_align --method grpo: the online loop on a tiny fixture, skipped groups, exact resume, DDP, the repeated batches."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_align import TINY, make_set
from tts_helpers import torchrun_saving_ranks

from ttsrl.bin import train_align
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig, load_codec_lm
from ttsrl.models.reward import MultiTaskReward, MultiTaskRewardConfig
from ttsrl.train.sampler import BucketBatchSampler, RepeatedBatchSampler, build_loader
from ttsrl.utils.checkpoint import load_checkpoint

V = 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from dataclasses import asdict

    root = tmp_path_factory.mktemp("grpo")
    train_tok, _ = make_set(root, "train", 6, 0, prompts=True)
    dev_tok, _ = make_set(root, "dev", 3, 1, prompts=True)
    torch.manual_seed(0)
    cfg = CodecLMConfig(text_vocab_size=10, speech_vocab_size=V, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                        dropout=0.0, max_len=64)
    torch.save({"model": CodecLM(cfg).state_dict(), "config": {"model_conf": asdict(cfg)}}, root / "lm.pt")
    rcfg = MultiTaskRewardConfig(speech_vocab_size=V, text_vocab_size=10, d_model=16, n_heads=2, d_ff=32,
                                 n_layers=1, dropout=0.0)
    (root / "reward").mkdir()
    torch.save({"model": MultiTaskReward(rcfg).state_dict(), "config": {"model_conf": asdict(rcfg)}},
               root / "reward" / "model.pt")
    return {"root": root, "train_tok": train_tok, "dev_tok": dev_tok, "lm": root / "lm.pt", "reward": root / "reward"}


def grpo_args(data, exp, *extra):
    return ["--config", TINY, "--method", "grpo", "--init_lm", str(data["lm"]), "--token_dir", str(data["train_tok"]),
            "--valid_token_dir", str(data["dev_tok"]), "--reward_model", str(data["reward"]), "--group_size", "3",
            "--kl_weight", "0.1", "--exp_dir", str(exp), *extra]


def step_lines(exp: Path) -> dict[int, str]:
    """step -> the stats train.log printed for it (log_interval 1)."""
    found = re.findall(r"step (\d+) batch \d+: (.*)", (exp / "train.log").read_text())
    return {int(s): line for s, line in found}


def logged_losses(exp: Path) -> dict[int, str]:
    """step -> the training loss as train.log printed it."""
    return {s: re.search(r"(?<![a-z_])loss (\S+)", line).group(1) for s, line in step_lines(exp).items()}


def test_grpo_trains_and_writes_a_loadable_model(data, tmp_path):
    exp = tmp_path / "grpo"
    summary = train_align.main(grpo_args(data, exp))
    assert summary["step"] == 4
    model = load_codec_lm(str(exp / "model.pt"))
    assert model.config.dropout == 0.0
    metrics = json.loads((exp / "metrics.json").read_text())
    assert metrics["method"] == "grpo" and metrics["steps"] == 4 and metrics["pairs"] == 6  # prompts, no pairs
    assert np.isfinite(metrics["val_reward"]) and metrics["val_loss"] == pytest.approx(-metrics["val_reward"])
    assert metrics["kl"] >= 0 and 0 <= metrics["val_cer"] and "val_reward_text" in metrics
    log = (exp / "train.log").read_text()
    for stat in ("policy_loss", "clip_frac", "reward_std", "skipped", "cer", "reward_ms"):
        assert f" {stat} " in log, stat
    before = load_checkpoint(data["lm"])["model"]
    assert max((model.state_dict()[k] - v).abs().max().item() for k, v in before.items()) > 0  # it learned


def test_groups_of_equal_rewards_are_skipped(data, tmp_path, monkeypatch):
    """A reward that never varies gives no group a signal: every group is left out and the weights stay."""
    import ttsrl.tasks.align

    def constant(opts, device, with_valid=True):
        def reward(tokens, rows):
            return {"reward": torch.full((len(tokens),), 0.5), "cer": torch.full((len(tokens),), 0.3)}

        return reward, reward

    monkeypatch.setattr(ttsrl.tasks.align, "build_group_rewards", constant)
    exp = tmp_path / "equal"
    train_align.main(grpo_args(data, exp, "--max_steps", "2"))
    line = step_lines(exp)[2]
    assert " skipped 1 " in line and logged_losses(exp)[2] == "0", line
    before = load_checkpoint(data["lm"])["model"]
    after = load_checkpoint(exp / "checkpoints" / "step_2.pt")["model"]
    for k, v in before.items():
        assert torch.equal(after[k], v), k


def test_resume_after_a_kill_gives_the_same_loss_curve(data, tmp_path):
    """Two updates per sampled batch: the run stopped after step 3 (the first update of a batch's samples)
    resumes with the samples it kept in its checkpoint, and steps 1-4 match a straight run's."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    extra = ("--num_updates", "2", "--max_tokens", "150", "--max_steps", "4")
    train_align.main(grpo_args(data, straight, *extra))
    first = train_align.main(grpo_args(data, resumed, *extra[:-1], "3"))  # "killed" after step 3
    assert first["step"] == 3
    kept = load_checkpoint(resumed / "checkpoints" / "step_3.pt")["rank_state"][0]["buffer"]
    assert kept and kept[0]["old_logp"] is not None  # the samples of step 3, for step 4
    again = train_align.main(grpo_args(data, resumed, *extra))
    assert again["step"] == 4 and "resumed from" in (resumed / "train.log").read_text()
    assert logged_losses(resumed) == logged_losses(straight) and len(logged_losses(straight)) == 4
    a = load_checkpoint(straight / "checkpoints" / "step_4.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints" / "step_4.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_options_are_checked(data, tmp_path, capsys):
    for extra, message in ((("--group_size", "1"), "group_size must be at least 2"),
                           (("--reward", "audio"), "--reward audio needs --data_dir, --tokenizer_dir, --flow")):
        with pytest.raises(SystemExit):
            train_align.main(grpo_args(data, tmp_path / "bad", *extra))
        assert message in capsys.readouterr().err


def test_repeated_batches_and_their_resume_position():
    base = BucketBatchSampler([1] * 5, max_tokens=1, shuffle=False, num_replicas=1, rank=0)  # 5 batches of 1
    s = RepeatedBatchSampler(base, repeats=2, group=2)
    s.set_epoch(1)
    got = [b[0] for b in s]
    # runs of 2 batches, each twice; the last, shorter run (batch 4) would share an update with its repeat: dropped
    assert got == [(0, 0, 0), (1, 0, 1), (0, 1, 0), (1, 1, 1), (2, 0, 0), (3, 0, 1), (2, 1, 0), (3, 1, 1)]
    s.set_epoch(1, start_batch=5)
    assert len(s) == 3 and [b[0] for b in s] == got[5:]
    one = RepeatedBatchSampler(base, repeats=1, group=2)
    one.set_epoch(1)
    assert [b[0] for b in one] == [(0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1), (4, 0, 0)]
    ds = [{"x": torch.tensor([i])} for i in range(5)]
    loader = build_loader(ds, [1] * 5, 1, lambda items: {"x": torch.cat([it["x"] for it in items])}, shuffle=False,
                          repeats=2, repeat_group=1)
    loader.batch_sampler.set_epoch(1)
    batches = list(loader)
    assert [(int(b["x"]), b["repeat"], b["slot"]) for b in batches[:4]] == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]


@pytest.mark.slow
def test_ddp_with_gloo_gives_identical_weights(data, tmp_path):
    """2 processes under torchrun (gloo on CPU): each samples and scores its own prompts; the averaged
    gradients leave both ranks with the same weights, moved from the init."""
    exp = tmp_path / "ddp"
    proc = torchrun_saving_ranks(tmp_path, "ttsrl.tasks.align", "AlignTask", grpo_args(
        data, exp, "--max_steps", "2", "--max_tokens", "150", "--ngpu", "0"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(exp / f"rank{r}.pt") for r in range(2))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    before = load_checkpoint(data["lm"])["model"]
    assert max((r0[k] - v).abs().max().item() for k, v in before.items()) > 0
    assert load_checkpoint(exp / "checkpoints" / "step_2.pt")["world_size"] == 2
