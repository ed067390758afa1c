"""Tests of ttsrl.train.trainer.Trainer in a single process (tiny models, random data)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from toy_train import ToyData, collate, plain_loss

from ttsrl.train.trainer import (
    CHECKPOINT_KEYS,
    NonFiniteLossError,
    Trainer,
    TrainerConfig,
    lr_factor,
)
from ttsrl.utils.checkpoint import find_resume_checkpoint, load_checkpoint, load_model
from ttsrl.utils.config import ConfigError

QUIET = dict(progress=False, tensorboard=False)


def batches(n_batches: int, batch_size: int, seed: int = 1) -> list[dict]:
    data = ToyData(n_batches * batch_size, seed=seed)
    return [collate([data[j] for j in range(i * batch_size, (i + 1) * batch_size)]) for i in range(n_batches)]


def linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(4, 1)


def lin_loss(model, batch):
    loss = F.mse_loss(model(batch["x"]).squeeze(-1), batch["y"])
    return loss, {"weight": len(batch["utts"])}


def sgd(**kw) -> TrainerConfig:
    base = dict(optim="sgd", lr=0.05, scheduler="constant", max_epochs=1, **QUIET)
    base.update(kw)
    return TrainerConfig(**base)


class Recorder(Trainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.losses: list[float] = []

    def on_step_end(self, stats):
        self.losses.append(stats["loss"])


def test_loss_decreases_on_toy_regression(tmp_path):
    data = batches(8, 16)
    cfg = TrainerConfig(max_epochs=15, lr=3e-2, warmup_steps=5, log_interval=8, **QUIET)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1), nn.Flatten(0))
    t = Recorder(model, data, batches(2, 16, seed=9), plain_loss, cfg, tmp_path)
    summary = t.train()
    assert len(t.losses) == 15 * 8 and summary["step"] == 120 and summary["epoch"] == 16
    assert sum(t.losses[-8:]) < 0.1 * sum(t.losses[:8])
    assert summary["last_valid"]["loss"] < 0.5
    log = (tmp_path / "train.log").read_text()
    assert "validation at step 120" in log and "epoch 15 step 120" in log


def test_grad_accumulation_equals_one_big_batch(tmp_path):
    small = batches(2, 4)
    big = [collate([item for b in small for item in _items(b)])]
    a, b = linear(), linear()
    Trainer(a, small, None, lin_loss, sgd(grad_accum=2, max_steps=1), tmp_path / "a").train()
    Trainer(b, big, None, lin_loss, sgd(max_steps=1), tmp_path / "b").train()
    assert not torch.equal(a.weight, linear().weight)  # it did train
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.bias, b.bias, rtol=0, atol=1e-6)


def test_short_accumulation_group_at_epoch_end_is_a_mean(tmp_path):
    data = batches(3, 4)  # grad_accum 2: the epoch's second step sees one batch only
    a, b, ref = linear(), linear(), linear()
    Trainer(a, data, None, lin_loss, sgd(grad_accum=2), tmp_path / "a").train()
    pairs = [collate(_items(data[0]) + _items(data[1])), data[2]]
    Trainer(b, pairs, None, lin_loss, sgd(), tmp_path / "b").train()
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-6)
    assert not torch.allclose(a.weight, ref.weight)


def _items(batch: dict) -> list[dict]:
    return [{"utt": u, "x": x, "y": y} for u, x, y in zip(batch["utts"], batch["x"], batch["y"], strict=True)]


def test_gradient_clipping(tmp_path):
    data = batches(1, 8)
    data[0]["y"] = data[0]["y"] * 100  # a huge gradient
    before = linear()
    m = linear()
    t = Recorder(m, data, None, lin_loss, sgd(lr=1.0, grad_clip=0.01, max_steps=1), tmp_path)
    grad_norms = []
    t.on_step_end = lambda stats: grad_norms.append(stats["grad_norm"])
    t.train()
    delta = torch.cat([(m.weight - before.weight).flatten(), (m.bias - before.bias).flatten()])
    assert grad_norms[0] > 1.0  # the logged norm is the one before clipping
    assert delta.norm().item() == pytest.approx(0.01, rel=1e-4)


def nan_batches() -> list[dict]:
    data = batches(4, 3)
    data[2]["x"][1, 0] = float("nan")
    return data


def test_nan_guard_names_step_and_utts(tmp_path):
    with pytest.raises(NonFiniteLossError) as e:
        Trainer(linear(), nan_batches(), None, lin_loss, sgd(), tmp_path).train()
    msg = str(e.value)
    assert "step 3" in msg and "batch 3 of the epoch" in msg
    assert "utt006, utt007, utt008" in msg and "loss nan" in msg and "max_bad_batches=0" in msg


def test_nan_batches_can_be_skipped(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        summary = Trainer(linear(), nan_batches(), None, lin_loss, sgd(max_bad_batches=1), tmp_path).train()
    assert summary["bad_batches"] == 1 and summary["step"] == 3
    assert any("skipping batch" in r.getMessage() and "utt006" in r.getMessage() for r in caplog.records)


def test_checkpoints_are_complete_atomic_and_pruned(tmp_path):
    cfg = sgd(max_epochs=3, save_interval=1, keep_last_k=2)
    Trainer(linear(), batches(3, 4), batches(1, 4, seed=5), lin_loss, cfg, tmp_path,
            resolved_config={"model": "linear", "lr": 0.05}).train()
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_8.pt", "step_9.pt"]
    assert (ckpts / "latest").read_text().strip() == "step_9.pt"
    assert not list(tmp_path.rglob("*.tmp"))
    state = load_checkpoint(ckpts / "step_9.pt")
    assert set(CHECKPOINT_KEYS) <= set(state)
    assert state["step"] == 9 and state["epoch"] == 4 and state["batch_idx"] == 0
    assert state["config"] == {"model": "linear", "lr": 0.05} and state["trainer_config"]["keep_last_k"] == 2
    assert {"python", "numpy", "torch"} <= set(state["rng"][0]) and state["optimizer"]["param_groups"]
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == {"model": "linear", "lr": 0.05}
    final = load_checkpoint(tmp_path / "model.pt")
    assert set(final) >= {"model", "config", "step"}


def test_best_checkpoint_and_early_stopping(tmp_path):
    scores = iter([5.0, 3.0, 4.0, 1.0, 2.0, 2.5, 9.0])

    def loss_fn(model, batch):
        loss, stats = lin_loss(model, batch)
        if not model.training:
            stats["score"] = next(scores)
        return loss, stats

    cfg = sgd(max_epochs=0, max_steps=20, valid_interval=1, best_metric="score", patience=3, keep_last_k=1)
    model = linear()
    summary = Trainer(model, batches(4, 2) * 5, batches(1, 2), loss_fn, cfg, tmp_path).train()
    assert summary["best_step"] == 4 and summary["best_value"] == 1.0
    assert summary["stopped_early"] and summary["step"] == 7  # 3 validations without improvement
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["step"] == 4 and best["best"]["value"] == 1.0
    final = load_checkpoint(tmp_path / "model.pt")
    assert final["step"] == 4
    torch.testing.assert_close(final["model"]["weight"], best["model"]["weight"])
    assert not torch.equal(final["model"]["weight"], model.weight.detach())  # model.pt is the best, not the last
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == ["step_7.pt"]


def test_stop_above_stops_training_and_never_picks_a_validation_over_the_limit(tmp_path, caplog):
    kls = iter([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7])  # "kl" of validations 1..7; the loss only falls

    def loss_fn(model, batch):
        loss, stats = lin_loss(model, batch)
        if not model.training:
            stats["kl"] = next(kls)
        return loss, stats

    def run(limit):
        cfg = sgd(max_epochs=0, max_steps=7, valid_interval=1, stop_above={"kl": limit}, keep_last_k=0)
        return Trainer(linear(), batches(1, 2) * 7, batches(1, 2), loss_fn, cfg, tmp_path).train()

    with caplog.at_level(logging.INFO, logger="ttsrl.train.trainer"):
        summary = run(0.5)
    # step 4 (kl 0.6) stops training; the best loss at or under the limit is step 3's
    assert summary["stopped_early"] and summary["step"] == 4 and summary["best_step"] == 3
    assert load_checkpoint(tmp_path / "model.pt")["step"] == 3
    assert "validation kl 0.6 above stop_above {'kl': 0.5}" in caplog.text
    # resumed with a looser limit, training goes on from step 4 (validations 5-7: kl 0.4, 0.5, 0.7)
    summary = run(0.65)
    assert summary["step"] == 7 and summary["stopped_early"] and summary["best_step"] == 6
    with pytest.raises(ConfigError, match="stop_above"):
        sgd(stop_above={"kl": "high"})
    with pytest.raises(KeyError, match="wer"):
        Trainer(linear(), batches(1, 2), batches(1, 2), lin_loss, sgd(stop_above={"wer": 1.0}), tmp_path / "b").train()


def test_best_metric_must_exist(tmp_path):
    with pytest.raises(KeyError, match="wer"):
        Trainer(linear(), batches(1, 2), batches(1, 2), lin_loss, sgd(best_metric="wer"), tmp_path).train()


def test_corrupt_newest_checkpoint_is_skipped_and_finished_run_does_nothing(tmp_path, caplog):
    data = batches(4, 2)
    cfg = sgd(max_epochs=0, max_steps=4, save_interval=1, keep_last_k=0)
    first = Recorder(linear(), data, None, lin_loss, cfg, tmp_path)
    first.train()
    ckpts = tmp_path / "checkpoints"
    newest = ckpts / "step_4.pt"
    newest.write_bytes(newest.read_bytes()[:200])  # cut short
    (ckpts / "step_5.pt.tmp").write_bytes(b"partial")

    with caplog.at_level(logging.WARNING):
        second = Recorder(linear(seed=1), data, None, lin_loss, cfg, tmp_path)
        second.train()
    assert any("skipping unreadable checkpoint" in r.getMessage() and "step_4.pt" in r.getMessage()
               for r in caplog.records)
    assert second.losses == pytest.approx(first.losses[3:], abs=1e-7)  # redid step 4 only, from step 3's state
    assert not list(ckpts.glob("*.tmp"))
    assert find_resume_checkpoint(ckpts, CHECKPOINT_KEYS)[1]["step"] == 4

    third = Recorder(linear(seed=2), data, None, lin_loss, cfg, tmp_path)
    assert third.train()["step"] == 4 and third.losses == []
    torch.testing.assert_close(third.model.weight, first.model.weight)


def test_a_truncated_best_pt_is_named_with_what_to_do(tmp_path):
    """A finished run whose best.pt was cut short failed on every rerun with a bare OSError (issue 29)."""
    from ttsrl.utils.checkpoint import CheckpointError

    data = batches(2, 2)
    cfg = sgd(max_epochs=0, max_steps=2, valid_interval=1, keep_last_k=0)
    Trainer(linear(), data, data, lin_loss, cfg, tmp_path).train()
    best = tmp_path / "checkpoints" / "best.pt"
    whole = best.read_bytes()
    best.unlink()  # a copy of its own (best.pt is a hard link of a step checkpoint), cut short
    best.write_bytes(whole[:300])
    with pytest.raises(CheckpointError) as e:
        Trainer(linear(), data, data, lin_loss, cfg, tmp_path).train()
    assert str(best) in str(e.value) and "delete it and rerun" in str(e.value)
    best.unlink()  # what the message says: model.pt then comes from the last step
    assert Trainer(linear(), data, data, lin_loss, cfg, tmp_path).train()["step"] == 2
    assert (tmp_path / "model.pt").is_file()


def test_an_empty_step_checkpoint_does_not_take_a_kept_slot(tmp_path, caplog):
    data = batches(6, 2)
    ckpts = tmp_path / "checkpoints"
    Trainer(linear(), data[:2], None, lin_loss, sgd(max_epochs=0, max_steps=2, save_interval=1, keep_last_k=2),
            tmp_path).train()
    (ckpts / "step_999.pt").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        Trainer(linear(), data, None, lin_loss, sgd(max_epochs=0, max_steps=5, save_interval=1, keep_last_k=2),
                tmp_path).train()
    assert "step_999.pt (an empty file (0 bytes)): renamed to step_999.pt.bad" in caplog.text
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_4.pt", "step_5.pt"]  # two real ones kept


def test_amp_is_ignored_on_cpu(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="ttsrl"):
        t = Trainer(linear(), batches(1, 2), None, lin_loss, sgd(amp="fp16"), tmp_path, device="cpu")
    assert not t.amp_active and not t.scaler.is_enabled()
    assert any("amp=fp16 is ignored on cpu" in r.getMessage() for r in caplog.records)
    t.train()


def test_tensorboard_and_loader_factory(tmp_path):
    epochs_seen = []

    def factory(epoch):
        epochs_seen.append(epoch)
        return batches(2, 2, seed=epoch)

    cfg = sgd(max_epochs=2, tensorboard=True, log_interval=1)
    Trainer(linear(), factory, None, lin_loss, cfg, tmp_path).train()
    assert epochs_seen == [1, 2]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_lr_schedules():
    cos = lr_factor(TrainerConfig(lr=1.0, warmup_steps=2, min_lr=0.1), total_steps=12)
    assert [cos(s) for s in (0, 1)] == [0.5, 1.0]
    assert cos(2) == pytest.approx(1.0) and cos(7) == pytest.approx(0.55) and cos(12) == pytest.approx(0.1)
    noam = lr_factor(TrainerConfig(scheduler="noam", warmup_steps=4), None)
    values = [noam(s) for s in range(12)]
    assert max(values) == pytest.approx(1.0) and values.index(max(values)) == 3
    assert values[-1] == pytest.approx(math.sqrt(4 / 12))
    const = lr_factor(TrainerConfig(scheduler="constant", warmup_steps=0), None)
    assert const(0) == const(100) == 1.0


def test_config_errors():
    with pytest.raises(ConfigError, match="TrainerConfig.optim"):
        TrainerConfig(optim="lion")
    with pytest.raises(ConfigError, match="max_steps"):
        TrainerConfig(max_epochs=0, max_steps=0)
    with pytest.raises(ConfigError, match="grad_accum"):
        TrainerConfig(grad_accum=0)


class ExtraStateTrainer(Trainer):
    """A subclass keeping extra state (a running mean of the weights) in its checkpoints."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.avg = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.loaded = None

    def on_step_end(self, stats):
        for k, v in self.model.state_dict().items():
            self.avg[k].mul_(0.5).add_(v.detach(), alpha=0.5)

    def extra_state(self):
        return {"avg": self.avg}

    def load_extra_state(self, state):
        self.loaded = state
        self.avg = state["avg"]


def test_extra_state_is_checkpointed(tmp_path):
    cfg = sgd(max_epochs=0, max_steps=3)
    first = ExtraStateTrainer(linear(), batches(3, 2), None, lin_loss, cfg, tmp_path)
    first.train()
    second = ExtraStateTrainer(linear(seed=3), batches(3, 2), None, lin_loss, cfg, tmp_path)
    second.train()
    torch.testing.assert_close(second.loaded["avg"]["weight"], first.avg["weight"])


def test_a_stochastic_validation_loss_draws_the_same_randoms_every_time(tmp_path):
    def noisy_loss(model, batch):  # e.g. a flow model's random times and noise
        loss, stats = lin_loss(model, batch)
        return loss + torch.rand(()), stats

    t = Trainer(linear(), batches(2, 2), batches(2, 2, seed=9), noisy_loss, sgd(), tmp_path)
    first = t.validate()
    torch.rand(7)  # training moves the global random stream on
    after = torch.get_rng_state()
    assert t.validate() == first
    assert torch.equal(torch.get_rng_state(), after)  # and validation leaves it where it was


def test_ema_of_the_weights_is_validated_saved_and_resumed(tmp_path):
    valid = batches(1, 4, seed=9)
    model = linear()
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    class Tracker(Trainer):  # the EMA by hand: decay min(0.9, (1 + step) / (10 + step)) after each step
        def on_step_end(self, stats):
            d = min(0.9, (1 + self.step) / (10 + self.step))
            for k, v in self.model.state_dict().items():
                expected[k].mul_(d).add_(v, alpha=1 - d)

    t = Tracker(model, batches(4, 2), valid, lin_loss, sgd(max_epochs=0, max_steps=4, ema_decay=0.9), tmp_path / "a")
    summary = t.train()
    for k, v in t.ema_model.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    assert not torch.allclose(expected["weight"], model.weight)  # the average lags the trained weights
    with torch.no_grad():  # validation scores the average, and model.pt holds it (step 4 is the best)
        assert summary["last_valid"]["loss"] == pytest.approx(float(lin_loss(t.ema_model, valid[0])[0]), rel=1e-5)
    assert summary["best_step"] == 4
    torch.testing.assert_close(load_checkpoint(tmp_path / "a/model.pt")["model"]["weight"], expected["weight"])
    assert load_checkpoint(tmp_path / "a/checkpoints/step_4.pt")["model"]["weight"].equal(model.weight.detach())
    # a run stopped after 2 steps and resumed to 4 ends with the same average
    for steps in (2, 4):
        r = Trainer(linear(), batches(4, 2), valid, lin_loss, sgd(max_epochs=0, max_steps=steps, ema_decay=0.9),
                    tmp_path / "b")
        r.train()
    torch.testing.assert_close(r.ema_model.state_dict()["weight"], expected["weight"])


@dataclass
class _ToyConf:
    d: int = 3
    name: str = "x"


class _Toy(nn.Module):
    def __init__(self, conf: _ToyConf) -> None:
        super().__init__()
        self.conf = conf
        self.lin = nn.Linear(conf.d, 1)


def test_load_model_rebuilds_from_the_saved_config_and_names_bad_files(tmp_path):
    src = _Toy(_ToyConf(d=4, name="y"))
    torch.save({"model": src.state_dict(), "config": {"model_conf": {"d": 4, "name": "y"}}}, tmp_path / "model.pt")
    for path in (tmp_path, tmp_path / "model.pt"):  # the folder or the file
        model = load_model(path, _Toy, _ToyConf, "toy model")
        assert model.conf == _ToyConf(d=4, name="y") and not model.training
        assert torch.equal(model.lin.weight, src.lin.weight)

    with pytest.raises(FileNotFoundError, match=r"toy model not found: .*missing$"):
        load_model(tmp_path / "missing", _Toy, _ToyConf, "toy model")
    with pytest.raises(ValueError, match=r"model.pt: no model_conf with a vocab in the saved config; not a toy model"):
        load_model(tmp_path, _Toy, _ToyConf, "toy model", require="vocab")
    torch.save({"model": {}, "config": {"lr": 1.0}}, tmp_path / "other.pt")  # e.g. not a model checkpoint
    with pytest.raises(ValueError, match="no model_conf in the saved config; not a toy model"):
        load_model(tmp_path / "other.pt", _Toy, _ToyConf, "toy model")
    torch.save({"model": {}, "config": {"model_conf": {"d": 4, "depth": 2}}}, tmp_path / "newer.pt")
    with pytest.raises(ConfigError, match="unknown key 'depth'"):
        load_model(tmp_path / "newer.pt", _Toy, _ToyConf, "toy model")
