"""train_speaker_encoder and train_dmo on a toy set: metrics, a student that load_flow reads and the
renoise sampler runs, resume after a kill, usage errors, and DDP (gloo) with the fake-only batches."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tts_helpers import torchrun_saving_ranks

from ttsrl.bin import train_dmo, train_speaker_encoder
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import write_kv
from ttsrl.feats.stats import FeatStats
from ttsrl.models.flow import load_flow
from ttsrl.models.speaker_encoder import load_speaker_encoder
from ttsrl.utils.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
COMMON = ["--progress", "false", "--tensorboard", "false"]
LETTERS = "abcdefgh"


def make_set(root: Path, name: str, n: int, seed: int):
    """Two speakers (a mel offset each), tokens that set the mel, texts of letters."""
    rng = np.random.default_rng(seed)
    table = np.random.default_rng(7).normal(size=(16, 80)).astype(np.float32)
    tok, feats, data = root / "tokens" / name, root / "feats" / name, root / "data" / name
    for d in (tok, feats, data):
        d.mkdir(parents=True)
    speech, mels, text, utt2spk = {}, {}, {}, {}
    for i in range(n):
        spk = f"spk{i % 2}"
        u = f"{spk}-u{i:02d}"
        tokens = rng.integers(0, 16, rng.integers(6, 11)).astype(np.int32)
        mel = np.repeat(table[tokens], 4, axis=0) + (1.5 if i % 2 else -1.5) + 0.1 * rng.normal(size=(4 * len(tokens), 80))
        speech[u], mels[u] = tokens, (mel - 5.0).astype(np.float32)
        text[u] = "".join(rng.choice(list(LETTERS), 4)) + " " + "".join(rng.choice(list(LETTERS), 3))
        utt2spk[u] = spk
    write_ark_scp(tok / "speech.ark", tok / "speech.scp", sorted(speech.items()))
    write_ark_scp(feats / "feats.ark", feats / "feats.scp", sorted(mels.items()))
    write_kv(data / "text", text)
    write_kv(data / "utt2spk", utt2spk)
    acc = FeatStats()
    for m in mels.values():
        acc.update(m)
    acc.save(feats / "stats.npz")
    return {"tok": tok, "feats": feats / "feats.scp", "data": data}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_tts_models):
    root = tmp_path_factory.mktemp("dmo")
    sets = {"train": make_set(root, "train", 10, 0), "dev": make_set(root, "dev", 4, 1)}
    spk = root / "speaker"
    train_speaker_encoder.main(["--config", str(CONF / "speaker" / "tiny.yaml"), "--exp_dir", str(spk), *COMMON,
                                "--train_data_dir", str(sets["train"]["data"]), "--train_feats", str(sets["train"]["feats"]),
                                "--valid_data_dir", str(sets["dev"]["data"]), "--valid_feats", str(sets["dev"]["feats"])])
    return {"root": root, "sets": sets, "speaker": spk, "teacher": tiny_tts_models / "flow.pt",
            "tokenizer": tiny_tts_models / "tokenizer"}


def dmo_args(s, exp, *extra):
    t, d = s["sets"]["train"], s["sets"]["dev"]
    return ["--config", str(CONF / "dmo" / "tiny.yaml"), "--exp_dir", str(exp), *COMMON, "--teacher", str(s["teacher"]),
            "--tokenizer_dir", str(s["tokenizer"]), "--speaker_encoder", str(s["speaker"]),
            "--train_dir", str(t["tok"]), "--train_feats", str(t["feats"]), "--train_data_dir", str(t["data"]),
            "--valid_dir", str(d["tok"]), "--valid_feats", str(d["feats"]), "--valid_data_dir", str(d["data"]), *extra]


def test_speaker_encoder_metrics_and_model(setup, tmp_path):
    m = json.loads((setup["speaker"] / "metrics.json").read_text())
    assert 0 <= m["dev_eer"] <= 100 and m["dev_trials"] == 6 and m["n_speakers"] == 2  # 4 dev utts: 6 pairs
    assert m["dev_target_trials"] == 2
    assert 0 <= m["dev_speaker_acc"] <= 1
    enc = load_speaker_encoder(setup["speaker"])
    assert enc.config.n_speakers == 2 and enc.mvn.std.min() > 0
    # a dev set of one utterance per speaker has no same-speaker pair: no EER, a warning, no failure
    dev = setup["sets"]["dev"]["data"]
    one = tmp_path / "one"
    one.mkdir()
    utt2spk = dict(line.split() for line in (dev / "utt2spk").read_text().splitlines())
    first = {s: u for u, s in reversed(list(utt2spk.items()))}  # each speaker's first utterance
    (one / "utt2spk").write_text("".join(f"{u} {s}\n" for s, u in sorted(first.items())))
    train = setup["sets"]["train"]
    train_speaker_encoder.main(["--config", str(CONF / "speaker" / "tiny.yaml"), "--exp_dir", str(tmp_path / "exp"),
                                *COMMON, "--max_epochs", "1", "--train_data_dir", str(train["data"]),
                                "--train_feats", str(train["feats"]), "--valid_data_dir", str(one),
                                "--valid_feats", str(setup["sets"]["dev"]["feats"])])
    m = json.loads((tmp_path / "exp" / "metrics.json").read_text())
    assert m["dev_eer"] is None and m["dev_trials"] == 1 and m["dev_target_trials"] == 0


def test_dmo_trains_a_student_that_synthesizes(setup, tmp_path):
    exp = tmp_path / "dmo"
    train_dmo.main(dmo_args(setup, exp, "--sv_weight", "1.0", "--max_steps", "4", "--valid_interval", "2"))
    m = json.loads((exp / "metrics.json").read_text())
    for who in ("student", "teacher"):
        for key in ("cer", "ctc", "sim", "mel_l1", "seconds"):
            assert np.isfinite(m[f"{who}_{key}"]), (who, key)
    assert m["student_steps"] == 2 and m["teacher_nfe"] == 10 and m["speedup"] > 0
    student = load_flow(exp / "student")
    teacher = load_flow(setup["teacher"])
    assert student.config == teacher.config
    moved = max(float((a - b).abs().max()) for a, b in zip(student.state_dict().values(),
                                                            teacher.state_dict().values(), strict=True))
    assert moved > 0  # two student updates in 4 batches
    mel, lens = student.synthesize(torch.randint(0, 16, (1, 6)), torch.tensor([6]), n_steps=2, cfg_scale=0.0,
                                   solver="renoise")
    assert mel.shape == (1, 80, 24) and torch.isfinite(mel).all()
    assert load_checkpoint(exp / "checkpoints" / "step_4.pt")["model"]["batches"] == 4


def test_resume_after_a_kill(setup, tmp_path):
    exp = tmp_path / "dmo"
    train_dmo.main(dmo_args(setup, exp, "--max_steps", "2", "--keep_last_k", "5"))
    first = load_checkpoint(exp / "checkpoints" / "step_2.pt")
    os.remove(exp / "model.pt")  # as if killed after the checkpoint
    train_dmo.main(dmo_args(setup, exp, "--max_steps", "4", "--keep_last_k", "5"))
    last = load_checkpoint(exp / "checkpoints" / "step_4.pt")
    assert int(first["model"]["batches"]) == 2 and int(last["model"]["batches"]) == 4
    assert "resum" in (exp / "train.log").read_text().lower()


def test_usage_errors(setup, tmp_path):
    with pytest.raises(SystemExit) as e:
        train_dmo.main(dmo_args(setup, tmp_path / "x", "--student_steps", "0"))
    assert e.value.code == 2
    args = dmo_args(setup, tmp_path / "y", "--sv_weight", "1")
    i = args.index("--speaker_encoder")
    with pytest.raises(SystemExit) as e:
        train_dmo.main(args[:i] + args[i + 2:])
    assert e.value.code == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_ddp_with_gloo(setup, tmp_path):
    """2 processes (gloo on CPU), 2 steps with gen_update_ratio 3: only the fake score model learned, the
    student is still the teacher (no gradient, untouched by the optimizer), and both ranks agree."""
    exp = tmp_path / "ddp"
    proc = torchrun_saving_ranks(tmp_path, "ttsrl.tasks.dmo", "DMOTask", dmo_args(
        setup, exp, "--max_steps", "2", "--gen_update_ratio", "3", "--max_tokens", "120", "--ngpu", "0",
        "--valid_interval", "0"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(exp / f"rank{r}.pt") for r in range(2))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    teacher = load_checkpoint(setup["teacher"])["model"]
    assert all(torch.equal(r0[f"student.{k}"], v) for k, v in teacher.items())
    assert any(not torch.equal(r0[f"fake.{k}"], v) for k, v in teacher.items())
