"""The data-dir shell tools in utils/: each runs (bash, venv first on PATH) and fails with a
non-zero exit code on bad input."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttsrl.data.toy import make_toy_data_dir

ROOT = Path(__file__).resolve().parents[2]


def sh(script: str, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHON", None)
    return subprocess.run(["bash", str(ROOT / "utils" / script), *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=env, cwd=ROOT)  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return Path(make_toy_data_dir(tmp_path / "data"))


def test_validate_and_fix(data: Path):
    assert sh("validate_data_dir.sh", data).returncode == 0
    (data / "wav" / "spk1-utt2.wav").unlink()
    r = sh("validate_data_dir.sh", data)
    assert r.returncode == 1 and "utterance 'spk1-utt2': audio file not found" in r.stderr
    assert sh("validate_data_dir.sh", "--no-audio", data).returncode == 0
    (data / "wav.scp").write_text("\n".join(x for x in (data / "wav.scp").read_text().splitlines()
                                            if not x.startswith("spk1-utt2")) + "\n")  # fmt: skip
    r = sh("fix_data_dir.sh", data)
    assert r.returncode == 0 and "spk1-utt2" in r.stderr
    assert sh("validate_data_dir.sh", data).returncode == 0
    assert sh("fix_data_dir.sh", data / "missing").returncode == 1


def test_split_subset_combine(data: Path, tmp_path: Path):
    r = sh("split_data.sh", "--per-spk", data, 3)
    assert r.returncode == 0 and r.stdout.split()[-1] == str(data / "split3" / "3")
    assert (data / "split3" / "2" / "utt2spk").read_text() == "spk2-utt1 spk2\nspk2-utt2 spk2\n"
    assert sh("split_data.sh", data, 99).returncode == 1
    assert sh("split_data.sh", data).returncode == 2  # usage error
    assert sh("subset_data_dir.sh", "--first", 3, data, tmp_path / "a").returncode == 0
    assert sh("subset_data_dir.sh", "--last", 3, data, tmp_path / "b").returncode == 0
    assert sh("subset_data_dir.sh", "--first", 0, data, tmp_path / "x").returncode == 1
    assert sh("combine_data.sh", tmp_path / "ab", tmp_path / "a", tmp_path / "b").returncode == 0
    assert (tmp_path / "ab" / "text").read_text() == (data / "text").read_text()
    r = sh("combine_data.sh", tmp_path / "aa", tmp_path / "a", tmp_path / "ab")
    assert r.returncode == 1 and "duplicate utterance id" in r.stderr


def test_utt2spk_spk2utt_conversions(data: Path):
    r = sh("utt2spk_to_spk2utt.sh", data / "utt2spk")
    assert r.returncode == 0 and r.stdout == (data / "spk2utt").read_text()
    r = sh("spk2utt_to_utt2spk.sh", stdin=(data / "spk2utt").read_text())
    assert r.returncode == 0 and r.stdout == (data / "utt2spk").read_text()
    r = sh("utt2spk_to_spk2utt.sh", stdin="a s1\nb\n")
    assert r.returncode != 0 and "stdin:2: expected" in r.stderr
    r = sh("spk2utt_to_utt2spk.sh", stdin="s1 a\ns2\n")
    assert r.returncode != 0 and "stdin:2: expected" in r.stderr


def test_help_and_python_override(data: Path):
    for script in ("validate_data_dir.sh", "fix_data_dir.sh", "split_data.sh", "subset_data_dir.sh", "combine_data.sh"):
        assert sh(script, "--help").returncode == 0, script
    env = dict(os.environ, PYTHON="/nonexistent/python3")
    r = subprocess.run(["bash", str(ROOT / "utils/validate_data_dir.sh"), str(data)], env=env, capture_output=True)
    assert r.returncode != 0
