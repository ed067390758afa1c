"""train_flow and train_vocoder on toy data: a few steps, model.pt + metrics.json, models load back."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsrl.bin import train_flow, train_vocoder
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError, write_kv
from ttsrl.data.mel_dataset import TokenMelDataset, WavSegmentDataset, collate_token_mel, collate_wavs
from ttsrl.data.toy import make_toy_data_dir
from ttsrl.feats.stats import FeatStats
from ttsrl.models.flow import load_flow
from ttsrl.models.vocoder import load_vocos

CONF = Path(__file__).resolve().parents[2] / "conf"
COMMON = ["--max_epochs", "0", "--progress", "false", "--tensorboard", "false", "--log_interval", "2"]


def make_token_mel_set(root, name, n=8, vocab=12, seed=0, spk_dim=0):
    """Tokens and a mel that is a function of them (4 frames per token, lengths a few frames off)."""
    rng = np.random.default_rng(seed)
    table = np.random.default_rng(123).normal(size=(vocab, 80)).astype(np.float32)
    tok_dir, feat_dir = root / "tokens" / name, root / "feats" / name
    tok_dir.mkdir(parents=True)
    utts = [f"spk{i % 2}-u{i:02d}" for i in range(n)]
    speech, feats, spk = {}, {}, {}
    for u in utts:
        tokens = rng.integers(0, vocab, rng.integers(4, 9)).astype(np.int32)
        mel = np.repeat(table[tokens], 4, axis=0) + 0.1 * rng.normal(size=(4 * len(tokens), 80))
        off = int(rng.integers(-3, 3))
        mel = mel[: len(mel) + off] if off < 0 else np.concatenate([mel, mel[-1:].repeat(off, 0)])
        speech[u], feats[u] = tokens, mel.astype(np.float32) - 5.0
        spk[u] = rng.normal(size=spk_dim).astype(np.float32)
    write_ark_scp(tok_dir / "speech.ark", tok_dir / "speech.scp", sorted(speech.items()))
    write_ark_scp(feat_dir / "feats.ark", feat_dir / "feats.scp", sorted(feats.items()))
    write_kv(feat_dir / "utt2num_frames", {u: str(len(m)) for u, m in feats.items()})
    if spk_dim:
        write_ark_scp(feat_dir / "spk.ark", feat_dir / "spk.scp", sorted(spk.items()))
    acc = FeatStats()
    for m in feats.values():
        acc.update(m)
    acc.save(feat_dir / "stats.npz")
    return tok_dir, feat_dir


def test_token_mel_dataset_aligns_and_checks(tmp_path):
    tok, feat = make_token_mel_set(tmp_path, "train", n=5)
    ds = TokenMelDataset(str(tok), str(feat / "feats.scp"))
    for i in range(len(ds)):
        item = ds[i]
        assert item["mel"].shape == (4 * len(item["speech"]), 80)
    batch = collate_token_mel([ds[0], ds[1]])
    assert batch["mel"].shape[:2] == (2, 80) and batch["mel_lens"].tolist() == (4 * batch["speech_lens"]).tolist()
    bad = tmp_path / "bad"
    write_ark_scp(bad / "feats.ark", bad / "feats.scp", [(u, np.zeros((3, 80), np.float32)) for u in ds.utts])
    with pytest.raises(DataDirError, match="mel frames"):
        TokenMelDataset(str(tok), str(bad / "feats.scp"))[0]


def test_wav_segment_dataset(tmp_path):
    data = make_toy_data_dir(tmp_path / "data", duration=0.2)
    ds = WavSegmentDataset(data, segment_frames=8, random_offset=True)
    batch = collate_wavs([ds[0], ds[1]])
    assert batch["wav"].shape == (2, 7 * 160) and (ds.lengths == 8).all()
    assert len(WavSegmentDataset(data, segment_frames=0)[0]["wav"]) == 3200
    assert len(WavSegmentDataset(data, segment_frames=40, random_offset=False)[0]["wav"]) == 39 * 160  # padded


@pytest.mark.parametrize("spk_dim", [0, 6])
def test_train_flow(tmp_path, spk_dim):
    tr_tok, tr_feat = make_token_mel_set(tmp_path, "train", n=10, spk_dim=spk_dim)
    dv_tok, dv_feat = make_token_mel_set(tmp_path, "dev", n=3, seed=1, spk_dim=spk_dim)
    exp = tmp_path / "exp"
    argv = ["--config", str(CONF / "flow" / "tiny.yaml"), "--train_dir", str(tr_tok), "--train_feats", str(tr_feat / "feats.scp"),
            "--valid_dir", str(dv_tok), "--valid_feats", str(dv_feat / "feats.scp"), "--speech_vocab_size", "12",
            "--exp_dir", str(exp), "--max_steps", "6", "--max_tokens", "80", "--eval_nfe", "2", *COMMON]
    if spk_dim:
        argv += ["--train_spk_scp", str(tr_feat / "spk.scp"), "--valid_spk_scp", str(dv_feat / "spk.scp")]
    train_flow.main(argv)
    metrics = json.loads((exp / "metrics.json").read_text())
    assert {"dev_loss", "dev_mel_l1", "dev_mcd"} <= set(metrics) and np.isfinite(metrics["dev_mel_l1"])
    model = load_flow(str(exp / "model.pt"))
    assert model.config.vocab_size == 12 and model.config.spk_embed_dim == spk_dim
    mean = np.load(tr_feat / "stats.npz")["mean"]
    assert np.allclose(model.mvn.mean.numpy(), mean, atol=1e-5)  # stats travel with the model
    spk = torch.randn(1, spk_dim) if spk_dim else None
    mel, lens = model.synthesize(torch.tensor([[1, 2, 3]]), torch.tensor([3]), spk=spk, n_steps=2)
    assert mel.shape == (1, 80, 12) and torch.isfinite(mel).all()


def test_train_vocoder(tmp_path):
    train = make_toy_data_dir(tmp_path / "train", duration=0.3)
    dev = make_toy_data_dir(tmp_path / "dev", num_spk=1, seed=1, duration=0.3)
    exp = tmp_path / "exp"
    train_vocoder.main(["--config", str(CONF / "vocoder" / "tiny.yaml"), "--train_data", train, "--valid_data", dev,
                        "--exp_dir", str(exp), "--max_steps", "4", *COMMON])
    metrics = json.loads((exp / "metrics.json").read_text())
    assert metrics["eval_utts"] == 2 and np.isfinite(metrics["dev_mel_l1"]) and "dev_mel_l1_griffin_lim" in metrics
    model = load_vocos(str(exp / "model.pt"))
    wav, lens = model.mel_to_wav(torch.randn(1, 80, 10))
    assert wav.shape == (1, 9 * 160)


@pytest.mark.parametrize("module", ["ttsrl.bin.train_flow", "ttsrl.bin.train_vocoder"])
def test_help(module):
    assert subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True).returncode == 0
