"""Tests of ttsrl.utils.config: YAML defaults, overrides, unknown keys, dumps, registries."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

import pytest
import yaml

from ttsrl.train.trainer import TrainerConfig
from ttsrl.utils.config import (
    ConfigError,
    NestedDictAction,
    Registry,
    add_config_args,
    add_dataclass_args,
    dataclass_from_args,
    dump_config,
    load_yaml,
    parse_with_config,
    str2bool,
    yaml_loads,
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy")
    add_config_args(parser)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--nj", type=int, default=1)
    parser.add_argument("--optim", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--use_amp", type=str2bool, default=False)
    parser.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999])
    parser.add_argument("--model_conf", action=NestedDictAction, default={})
    return parser


def write(path, text: str):
    path.write_text(text)
    return str(path)


def test_yaml_gives_defaults_and_command_line_overrides(tmp_path):
    conf = write(
        tmp_path / "a.yaml",
        "exp_dir: exp/a\nlr: 1e-3\noptim: sgd\nuse_amp: true\nbetas: [0.8, 0.9]\n"
        "model_conf:\n  d_model: 16\n  enc: {n_layers: 2, dropout: 0.1}\n",
    )
    args = parse_with_config(make_parser(), ["--config", conf])
    assert args.exp_dir == "exp/a"  # a required option may come from the file
    assert args.lr == pytest.approx(1e-3) and isinstance(args.lr, float)  # 1e-3 is a float, not "1e-3"
    assert args.optim == "sgd" and args.use_amp is True and args.betas == [0.8, 0.9]
    assert args.nj == 1  # untouched default

    args = parse_with_config(
        make_parser(),
        ["--config", conf, "--lr", "5e-4", "--use_amp", "false", "--model_conf", "enc.n_layers=4",
         "--model_conf", "{act: relu}"],
    )
    assert args.lr == pytest.approx(5e-4) and args.use_amp is False
    assert args.model_conf == {"d_model": 16, "enc": {"n_layers": 4, "dropout": 0.1}, "act": "relu"}


def test_no_config_file_and_nested_dict_default_not_mutated():
    parser = make_parser()
    args = parse_with_config(parser, ["--exp_dir", "x", "--model_conf", "a=1"])
    assert args.model_conf == {"a": 1}
    assert parse_with_config(parser, ["--exp_dir", "x"]).model_conf == {}


def test_unknown_key_names_key_and_file(tmp_path, capsys):
    conf = write(tmp_path / "typo.yaml", "exp_dir: e\nlearning_rate: 0.1\n")
    with pytest.raises(SystemExit) as e:
        parse_with_config(make_parser(), ["--config", conf])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'learning_rate'" in err and conf in err and "lr" in err  # lists the valid keys


@pytest.mark.parametrize(
    "text, needle",
    [("nj: two\n", "nj"), ("optim: rmsprop\n", "rmsprop"), ("use_amp: maybe\n", "use_amp"),
     ("betas: [0.9]\n", "betas"), ("model_conf: 3\n", "model_conf"), ("- a\n- b\n", "mapping")],
)
def test_bad_values_in_yaml_are_errors(tmp_path, capsys, text, needle):
    conf = write(tmp_path / "bad.yaml", text)
    with pytest.raises(SystemExit):
        parse_with_config(make_parser(), ["--config", conf, "--exp_dir", "e"])
    err = capsys.readouterr().err
    assert needle in err and conf in err


def test_missing_config_file_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_with_config(make_parser(), ["--config", str(tmp_path / "nope.yaml"), "--exp_dir", "e"])
    assert "nope.yaml" in capsys.readouterr().err


def test_dump_round_trip(tmp_path):
    conf = write(tmp_path / "a.yaml", "exp_dir: e\nlr: 2.5e-4\nmodel_conf: {d: 8, names: [a, b]}\n")
    args = parse_with_config(make_parser(), ["--config", conf, "--nj", "4", "--betas", "0.5", "0.6"])
    out = dump_config(args, tmp_path / "exp" / "config.yaml")
    assert "config" not in load_yaml(out)  # the dump is the whole config
    assert not list((tmp_path / "exp").glob("*.tmp"))
    again = parse_with_config(make_parser(), ["--config", str(out)])
    assert vars(again) | {"config": None} == vars(args) | {"config": None}


def test_dataclass_args_from_yaml_and_cli(tmp_path):
    parser = argparse.ArgumentParser()
    add_config_args(parser)
    add_dataclass_args(parser, TrainerConfig, group="trainer")
    conf = write(tmp_path / "t.yaml", "lr: 1e-4\nbetas: [0.9, 0.98]\nscheduler: noam\nwarmup_steps: 100\n")
    args = parse_with_config(parser, ["--config", conf, "--grad_accum", "4", "--progress", "false"])
    cfg = dataclass_from_args(TrainerConfig, args)
    assert cfg.lr == pytest.approx(1e-4) and cfg.betas == (0.9, 0.98) and cfg.scheduler == "noam"
    assert cfg.grad_accum == 4 and cfg.progress is False and cfg.max_epochs == 10
    with pytest.raises(SystemExit):
        parse_with_config(parser, ["--optim", "lion"])  # choices come from the field metadata
    with pytest.raises(ConfigError, match="noam"):
        TrainerConfig(scheduler="noam", warmup_steps=0)


@pytest.mark.parametrize("formatter", ["plain", "task"])
def test_dataclass_help_gives_each_default_once(formatter):
    """With argparse's plain formatter and with the one of every training entrypoint (defaults added)."""
    from ttsrl.tasks.base import _HelpFormatter

    @dataclass
    class Opts:
        beta: float = field(default=0.1, metadata={"help": "inverse temperature"})
        cache: str = field(default="", metadata={"help": "a file (default: <exp_dir>/cache.pt)"})

    parser = argparse.ArgumentParser(formatter_class=_HelpFormatter if formatter == "task" else argparse.HelpFormatter)
    add_dataclass_args(parser, Opts)
    text = " ".join(parser.format_help().split())
    assert "inverse temperature (default: 0.1)" in text and text.count("(default") == 2
    assert "(default: <exp_dir>/cache.pt)" in text


@pytest.mark.parametrize("name", ["train_lm", "train_align", "train_reward", "train_tokenizer", "train_flow"])
def test_entrypoint_help_names_each_default_once(name):
    """train_lm and train_align printed "(default: X) (default: X)" 24 times."""
    import importlib

    text = " ".join(importlib.import_module(f"ttsrl.bin.{name}").get_parser().format_help().split())
    assert not re.search(r"\(default[^()]*\) \(default", text), name


def test_yaml_floats_and_bools():
    assert yaml_loads("a: 1e-3\nb: -2E+2\nc: 3\nd: .5\ne: 1.0") == {"a": 1e-3, "b": -200.0, "c": 3, "d": 0.5, "e": 1.0}
    assert str2bool("Yes") is True and str2bool("0") is False
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("sometimes")
    # the default loader is left alone
    assert yaml.safe_load("a: 1e-3") == {"a": "1e-3"}


@dataclass
class TinyConfig:
    d_model: int = 8
    dropout: float = 0.1
    act: str = "relu"
    dims: tuple[int, ...] = (1, 2)
    extra: dict = field(default_factory=dict)
    ref: str | None = None


MODELS = Registry("model")


@MODELS.register("tiny")
class Tiny:
    def __init__(self, config: TinyConfig, scale: float = 1.0):
        self.config = config
        self.scale = scale


def test_registry_build_and_errors():
    m = MODELS.build("tiny", {"d_model": "16", "dropout": "1e-2", "dims": [3, 4], "ref": "none"}, scale=2.0)
    assert isinstance(m, Tiny) and m.scale == 2.0
    assert m.config == TinyConfig(d_model=16, dropout=0.01, dims=(3, 4), ref=None)
    assert MODELS.build("tiny").config == TinyConfig()
    assert "tiny" in MODELS and MODELS.names() == ["tiny"] and MODELS.config_class("tiny") is TinyConfig

    with pytest.raises(ConfigError) as e:
        MODELS.build("tiny", {"d_modle": 3})
    msg = str(e.value)
    assert "'d_modle'" in msg and "d_model, dropout, act, dims, extra, ref" in msg

    with pytest.raises(ConfigError, match="unknown model 'huge'; registered: tiny"):
        MODELS.build("huge", {})
    with pytest.raises(ConfigError, match="d_model"):
        MODELS.build("tiny", {"d_model": "sixteen"})
    with pytest.raises(ConfigError, match="dropout"):
        MODELS.build("tiny", {"dropout": [1]})
    with pytest.raises(ConfigError, match="d_model"):
        MODELS.build("tiny", {"d_model": True})


def test_registry_rejects_class_without_dataclass_config():
    reg = Registry("scorer")
    with pytest.raises(TypeError, match="dataclass"):

        @reg.register("plain")
        class Plain:
            def __init__(self, n: int):
                self.n = n

    @reg.register("explicit", config=TinyConfig)
    class Explicit:
        def __init__(self, config):
            self.config = config

    assert reg.build("explicit", {"act": "gelu"}).config.act == "gelu"
