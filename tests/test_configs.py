"""Every YAML config under conf/ loads with its entrypoint's parser and builds its model (dry run).

A config folder is registered in BUILDERS with a function that parses the file the way its
entrypoint does and builds the model on the meta device (no memory for the weights).
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsrl.tasks.base import get_parser
from ttsrl.train.trainer import TrainerConfig
from ttsrl.utils.config import dataclass_from_args, parse_with_config

ROOT = Path(__file__).resolve().parents[1]


def build_lm(conf, tmp_path):
    from ttsrl.data.arrays import write_ark_scp
    from ttsrl.data.datadir import write_kv
    from ttsrl.tasks.lm import LMTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    train = tmp_path / "train"  # position rope measures its speech_pos_rate here (3 text / 5 speech tokens)
    train.mkdir()
    write_kv(train / "text", {"u1": "2 3 2"})
    write_ark_scp(train / "speech.ark", train / "speech.scp", [("u1", np.arange(5, dtype=np.int32))])
    args = parse_with_config(get_parser(LMTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_dir", str(train), "--valid_dir", "x",
        "--token_list", str(tokens), "--speech_vocab_size", "1000"])
    dataclass_from_args(TrainerConfig, args)
    model = LMTask().build_model(args)
    assert model.config.position == "learned" or model.config.speech_pos_rate == 0.6
    return model


def build_flow(conf, tmp_path):
    import numpy as np

    from ttsrl.feats.stats import FeatStats
    from ttsrl.tasks.flow import FlowTask

    acc = FeatStats()
    acc.update(np.random.default_rng(0).normal(size=(10, 80)))
    acc.save(tmp_path / "stats.npz")
    args = parse_with_config(get_parser(FlowTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_dir", "x", "--valid_dir", "x",
        "--train_feats", str(tmp_path / "feats.scp"), "--valid_feats", "x", "--speech_vocab_size", "1000"])
    dataclass_from_args(TrainerConfig, args)
    return FlowTask().build_model(args)


def build_vocoder(conf, tmp_path):
    from ttsrl.tasks.vocoder import VocoderTask

    args = parse_with_config(get_parser(VocoderTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_data", "x", "--valid_data", "x"])
    dataclass_from_args(TrainerConfig, args)
    return VocoderTask().build_model(args)


def build_asr(conf, tmp_path):
    import numpy as np

    from ttsrl.feats.stats import FeatStats
    from ttsrl.tasks.asr import ASRTask

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text").write_text("u1 hello world\nu2 good morning\n")
    acc = FeatStats()
    acc.update(np.random.default_rng(0).normal(size=(10, 80)))
    acc.save(tmp_path / "stats.npz")
    args = parse_with_config(get_parser(ASRTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_data_dir", str(tmp_path / "data"),
        "--valid_data_dir", "x", "--stats_files", str(tmp_path / "stats.npz")])
    dataclass_from_args(TrainerConfig, args)
    return ASRTask().build_model(args)


def build_tokenizer(conf, tmp_path, vocab_size=30):
    from ttsrl.bin.train_tokenizer import get_parser as tokenizer_parser
    from ttsrl.models.speech_tokenizer import SPEECH_TOKENIZERS

    args = parse_with_config(tokenizer_parser(), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_data_dir", "x", "--train_feats_dir", "x",
        "--valid_data_dir", "x", "--valid_feats_dir", "x"])
    dataclass_from_args(TrainerConfig, args)
    return SPEECH_TOKENIZERS.build(args.model, {**args.model_conf, "vocab_size": vocab_size})


def build_reward(conf, tmp_path):
    from ttsrl.tasks.reward import RewardTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2emo").write_text("u1 happy\nu2 sad\n")
    (data / "utt2quality").write_text("u1 4\nu2 2\n")
    args = parse_with_config(get_parser(RewardTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_dir", "x", "--train_data_dir", str(data),
        "--valid_dir", "x", "--valid_data_dir", "x", "--token_list", str(tokens), "--speech_vocab_size", "1000"])
    dataclass_from_args(TrainerConfig, args)
    if args.init_ctc_from_tokenizer:  # its text path must fit the tokenizer config of the same name
        from tts_helpers import save

        with torch.device("cpu"):  # the tokenizer's weights are saved and loaded: no meta device
            tok = build_tokenizer(ROOT / "conf" / "tokenizer" / conf.name, tmp_path, vocab_size=5)
            args.tokenizer_dir = tmp_path / "tokenizer"
            args.tokenizer_dir.mkdir()
            save(tok, tok.config, args.tokenizer_dir / "model.pt", token_type="char")
            return RewardTask().build_model(args)
    return RewardTask().build_model(args)


def build_align(conf, tmp_path):
    """The policy built from a tiny init LM with the config's model_conf overrides (coh adds tags)."""
    from dataclasses import asdict

    from ttsrl.align.trainer import build_policy
    from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
    from ttsrl.tasks.align import AlignTask

    init = tmp_path / "lm.pt"
    with torch.device("cpu"):
        cfg = CodecLMConfig(text_vocab_size=10, speech_vocab_size=20, d_model=16, n_layers=1, n_heads=2, d_ff=32)
        torch.save({"model": CodecLM(cfg).state_dict(), "config": {"model_conf": asdict(cfg)}}, init)
    args = parse_with_config(get_parser(AlignTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--init_lm", str(init), "--token_dir", "x",
        "--pairs", "x"])
    dataclass_from_args(TrainerConfig, args)
    with warnings.catch_warnings():  # loading CPU weights into the meta model is a no-op, as wanted here
        warnings.filterwarnings("ignore", message=".*meta parameter.*")
        return build_policy(args.init_lm, args.method, args.model_conf)


def build_speaker(conf, tmp_path):
    from ttsrl.feats.stats import FeatStats
    from ttsrl.tasks.speaker import SpeakerTask

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "utt2spk").write_text("a-1 a\nb-1 b\n")
    acc = FeatStats()
    acc.update(np.random.default_rng(0).normal(size=(10, 80)))
    acc.save(tmp_path / "stats.npz")
    args = parse_with_config(get_parser(SpeakerTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--train_data_dir", str(tmp_path / "data"),
        "--train_feats", str(tmp_path / "feats.scp"), "--valid_data_dir", "x", "--valid_feats", "x"])
    dataclass_from_args(TrainerConfig, args)
    task = SpeakerTask()
    task.check_args(args)
    return task.build_model(args)


def build_dmo(conf, tmp_path):
    """The options check; the student and fake score of a flow model of the same size's config."""
    from ttsrl.align.dmo import DMOModel, DMOOptions
    from ttsrl.models.flow import FlowConfig, FlowMatching
    from ttsrl.tasks.dmo import DMOTask
    from ttsrl.utils.config import load_yaml

    args = parse_with_config(get_parser(DMOTask), [
        "--config", str(conf), "--exp_dir", str(tmp_path), "--teacher", "x", "--tokenizer_dir", "x",
        "--train_dir", "x", "--train_feats", "x", "--train_data_dir", "x",
        "--valid_dir", "x", "--valid_feats", "x", "--valid_data_dir", "x"])
    dataclass_from_args(TrainerConfig, args)
    dataclass_from_args(DMOOptions, args)
    flow_conf = load_yaml(ROOT / "conf" / "flow" / conf.name)["model_conf"]
    return DMOModel.from_teacher(FlowMatching(FlowConfig(vocab_size=1000, **flow_conf)))


BUILDERS = {"tokenizer": build_tokenizer, "lm": build_lm, "flow": build_flow, "vocoder": build_vocoder, "asr": build_asr,
            "reward": build_reward, "align": build_align, "speaker": build_speaker, "dmo": build_dmo}
CONFIGS = sorted(p for p in (ROOT / "conf").glob("*/*.yaml"))


def test_every_config_folder_has_a_builder():
    assert {p.parent.name for p in CONFIGS} <= set(BUILDERS), "add a builder for each conf/<folder>"


@pytest.mark.parametrize("conf", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_builds(conf, tmp_path):
    with torch.device("meta"):
        model = BUILDERS[conf.parent.name](conf, tmp_path)
    assert sum(p.numel() for p in model.parameters()) > 0
