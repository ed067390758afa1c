"""ttsrl.bin.train_asr: --help, a tiny training on toy data (features computed from wav.scp or dumped)."""

import json

import pytest

from ttsrl.bin import train_asr
from ttsrl.data.toy import make_toy_data_dir

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
TINY = str(ROOT / "conf" / "asr" / "tiny.yaml")


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        train_asr.main(["--help"])
    assert e.value.code == 0 and "--train_data_dir" in capsys.readouterr().out


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("asr")
    return make_toy_data_dir(root / "train", duration=0.6), make_toy_data_dir(root / "dev", duration=0.6, seed=1)


def test_train_on_toy_data(toy, tmp_path):
    from ttsrl.models.asr import CTCASR

    train, dev = toy
    exp = tmp_path / "judge"
    args = ["--config", TINY, "--train_data_dir", train, "--valid_data_dir", dev, "--exp_dir", str(exp),
            "--max_steps", "4", "--valid_interval", "2", "--progress", "false", "--tensorboard", "false"]
    summary = train_asr.main(args)
    assert (exp / "model.pt").is_file()
    metrics = json.loads((exp / "metrics.json").read_text())
    assert 0 <= metrics["dev_cer"] and metrics["dev_utts"] == 6 and "train_seconds" in metrics
    assert summary["step"] == 4
    model = CTCASR.from_pretrained(exp)  # self-contained: characters, mel config and stats
    assert "<space>" in model.config.token_list and not model.training
    assert model.mvn.std.ne(1).any()
    assert len(model.transcribe_wav([__import__("numpy").zeros(8000, dtype="float32")], 16000)) == 1
    # a second run resumes at the last step: nothing left to do
    assert train_asr.main(args)["step"] == 4


def test_train_with_dumped_feats(toy, tmp_path):
    from ttsrl.bin import compute_feats

    train, dev = toy
    for name, d in (("train", train), ("dev", dev)):
        compute_feats.main(["--data_dir", d, "--out_dir", str(tmp_path / "feats" / name), "--write_stats", "true"])
    exp = tmp_path / "judge"
    train_asr.main(["--config", TINY, "--train_data_dir", train, "--train_feats_dir", str(tmp_path / "feats" / "train"),
                    "--valid_data_dir", dev, "--valid_feats_dir", str(tmp_path / "feats" / "dev"),
                    "--exp_dir", str(exp), "--max_steps", "2", "--progress", "false", "--tensorboard", "false"])
    assert json.loads((exp / "metrics.json").read_text())["dev_utts"] == 6


def test_bad_input_fails(tmp_path):
    with pytest.raises((OSError, ValueError)):
        train_asr.main(["--config", TINY, "--train_data_dir", str(tmp_path / "missing"),
                        "--valid_data_dir", str(tmp_path / "missing"), "--exp_dir", str(tmp_path / "exp")])
