"""ttsrl.bin.compute_feats: --help, a tiny data dir of sine waves, stats, failures."""

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml

from ttsrl.bin.compute_feats import main
from ttsrl.feats.mel import MelConfig, MelExtractor
from ttsrl.feats.stats import FeatStats

UTTS = {"spk1-a": (16000, 0.50, 220.0), "spk1-b": (16000, 0.33, 330.0), "spk2-a": (22050, 0.41, 150.0)}


def make_data_dir(root, utts=UTTS, missing=()):
    d = root / "data" / "train"
    (root / "wav").mkdir(parents=True)
    d.mkdir(parents=True)
    wav_scp, text, utt2spk = [], [], []
    for utt, (sr, seconds, freq) in sorted(utts.items()):
        path = root / "wav" / f"{utt}.wav"
        if utt not in missing:
            t = np.arange(int(sr * seconds)) / sr
            sf.write(path, 0.4 * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")
        wav_scp.append(f"{utt} {path}\n")
        text.append(f"{utt} hello world\n")
        utt2spk.append(f"{utt} {utt.split('-')[0]}\n")
    (d / "wav.scp").write_text("".join(wav_scp))
    (d / "text").write_text("".join(text))
    (d / "utt2spk").write_text("".join(utt2spk))
    return d


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as e:  # in-process: a subprocess would spend seconds importing torch
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--write_stats" in out and "--hop_length" in out and "--num_threads" in out


def test_dumps_feats_and_stats(tmp_path):
    data = make_data_dir(tmp_path)
    out = tmp_path / "dump" / "feats" / "train"
    main(["--data_dir", str(data), "--out_dir", str(out), "--write_stats"])
    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    assert sorted(feats) == sorted(UTTS)
    num_frames = dict(line.split() for line in (out / "utt2num_frames").read_text().splitlines())
    extractor = MelExtractor()
    for utt, (sr, seconds, _) in UTTS.items():
        n_samples = int(round(int(sr * seconds) * 16000 / sr))  # resampled to 16 kHz
        assert feats[utt].shape == (n_samples // 160 + 1, 80) and feats[utt].dtype == np.float32
        assert int(num_frames[utt]) == feats[utt].shape[0]
        if sr == 16000:
            wav, _ = sf.read(tmp_path / "wav" / f"{utt}.wav", dtype="float32")
            np.testing.assert_allclose(feats[utt], extractor.compute(wav), atol=1e-5)
    stats = FeatStats.load(out / "stats.npz")
    allx = np.concatenate(list(feats.values())).astype(np.float64)
    assert stats.count == len(allx)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats.std, allx.std(0), rtol=1e-7)
    conf = yaml.safe_load((out / "mel_conf.yaml").read_text())
    assert MelConfig(**conf) == MelConfig()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_options_and_no_stats(tmp_path):
    data = make_data_dir(tmp_path)
    out = tmp_path / "out"
    main(
        [
            "--data_dir",
            str(data),
            "--out_dir",
            str(out),
            "--write_stats",
            "false",
            "--n_mels",
            "40",
            "--hop_length",
            "200",
        ]
    )
    assert not (out / "stats.npz").exists()
    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    assert feats["spk1-a"].shape == (8000 // 200 + 1, 40)


def test_missing_audio_names_the_utterance(tmp_path, caplog):
    data = make_data_dir(tmp_path, missing=("spk1-b",))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["--data_dir", str(data), "--out_dir", str(out), "--write_stats", "true"])
    assert e.value.code != 0
    assert any("spk1-b" in r.getMessage() for r in caplog.records)
    assert not (out / "feats.scp").exists() and not (out / "stats.npz").exists()


def test_a_rerun_removes_what_a_killed_run_left(tmp_path):
    """A killed compute_feats leaves the atomic writer's hidden temporaries; the next run removes them."""
    data = make_data_dir(tmp_path)
    out = tmp_path / "dump" / "feats" / "train"
    out.mkdir(parents=True)
    stale = [out / ".feats.ark.k1ll3d.tmp", out / ".feats.scp.k1ll3d.tmp", out / ".stats.npz.x.npz"]
    for p in stale:
        p.write_bytes(b"half a file")
    (out / ".keep_me").write_text("not ours")
    main(["--data_dir", str(data), "--out_dir", str(out), "--write_stats"])
    assert not any(p.exists() for p in stale) and (out / ".keep_me").exists()
    assert (out / "feats.scp").is_file() and (out / "stats.npz").is_file()
