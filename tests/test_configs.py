"""Every YAML config under conf/ loads with its entrypoint's parser and builds its model (dry run).

A config folder is registered in BUILDERS with a function that parses the file the way its
entrypoint does and builds the model on the meta device (no memory for the weights).
"""
from pathlib import Path

import pytest
import torch

from ttsrl.tasks.base import get_parser
from ttsrl.train.config import dataclass_from_args, parse_with_config
from ttsrl.train.trainer import TrainerConfig

ROOT = Path(__file__).resolve().parents[1]


def build_lm(conf, tmp_path):
    from ttsrl.tasks.lm import LMTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    args = parse_with_config(get_parser(LMTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_dir", "x", "--valid_dir", "x",
        "--token_list", str(tokens), "--speech_vocab_size", "1000"])
    dataclass_from_args(TrainerConfig, args)
    return LMTask.build_model(args)


BUILDERS = {"lm": build_lm}
CONFIGS = sorted(p for p in (ROOT / "conf").glob("*/*.yaml"))


def test_every_config_folder_has_a_builder():
    assert {p.parent.name for p in CONFIGS} <= set(BUILDERS), "add a builder for each conf/<folder>"


@pytest.mark.parametrize("conf", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_builds(conf, tmp_path):
    with torch.device("meta"):
        model = BUILDERS[conf.parent.name](conf, tmp_path)
    assert sum(p.numel() for p in model.parameters()) > 0
