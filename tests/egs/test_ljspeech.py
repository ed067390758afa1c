"""egs/ljspeech/rl1/local/data.sh on a tiny LJSpeech-1.1 in the real layout."""

import subprocess
import tarfile

from corpus_fixtures import (
    REPO,
    check_data_dir,
    check_prompts,
    help_exit_codes,
    load_wav,
    make_ljspeech,
    read_kv,
    recipe_env,
    run_data_sh,
    validate,
)


def test_prepares_train_dev_test(tmp_path):
    db = tmp_path / "db"
    fx = make_ljspeech(db)
    data = tmp_path / "data"
    r = run_data_sh("ljspeech", "--db_dir", db, "--download", "false", "--data_dir", data,
                    "--n_dev", 3, "--n_test", 3)
    assert r.returncode == 0, r.stderr
    # the clip listed without its wav is reported, not silently dropped
    assert "skipped 1 of 13 utterances" in r.stderr and "LJ001-0006" in r.stderr
    assert read_kv(data / "local" / "skipped_utts") == [("LJ001-0006", "without a wav")]

    ids = fx["ids"]
    sets = {}
    for name in ("train", "dev", "test"):
        sets[name] = check_data_dir(data / name, labels=("lang", "gender"))
        files = sets[name]
        assert set(files["utt2lang"].values()) == {"en"}
        assert set(files["utt2gender"].values()) == {"f"}
        assert set(files["utt2spk"].values()) == {"LJ"}
        for utt, text in files["text"].items():
            assert text == fx["normalized"][utt]  # the third column, not the raw text
        res = validate(data / name)
        assert res is None or res.returncode == 0, res.stdout + res.stderr
    # deterministic split in metadata order: test last, dev before it
    assert list(sets["test"]["text"]) == ids[-3:]
    assert list(sets["dev"]["text"]) == ids[-6:-3]
    assert list(sets["train"]["text"]) == ids[:-6]
    check_prompts(data / "test", sets["test"])
    assert not (data / "train" / "prompt.scp").exists()

    # the 22.05 kHz source comes out at 16 kHz, with its length
    utt, spec = next(iter(sets["dev"]["wav.scp"].items()))
    assert spec.startswith("sox ") and spec.endswith("|")
    audio, fs = load_wav(spec)
    assert fs == 16000
    assert abs(len(audio) - fx["durations"][utt] * 16000) <= 2


def test_run_sh_stage_1(tmp_path):
    """run.sh -> rl.sh stage 1: local/data.sh, then utils/validate_data_dir.sh on every set. --db_dir is an
    option of the recipe; rl.sh gives data.sh its --datadir and --fs, so --local_data_opts only adds to them."""
    db, data = tmp_path / "db", tmp_path / "data"
    make_ljspeech(db, n=8, missing_wav=False)
    r = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--datadir", str(data), "--db_dir", str(db),
                        "--local_data_opts", "--download false --n_dev 2 --n_test 2"],
                       cwd=REPO / "egs" / "ljspeech" / "rl1", env=recipe_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"local/data.sh --data_dir {data} --fs 16000 --db_dir {db} --download false" in r.stdout
    assert (data / ".stage1.done").exists()
    assert len(read_kv(data / "test" / "prompt.scp")) == 2


def test_missing_corpus_fails_naming_the_path(tmp_path):
    r = run_data_sh("ljspeech", "--db_dir", tmp_path / "nowhere", "--download", "false",
                    "--data_dir", tmp_path / "data")
    assert r.returncode != 0
    assert str(tmp_path / "nowhere" / "LJSpeech-1.1" / "metadata.csv") in r.stderr
    assert not (tmp_path / "data" / "train").exists()


def test_bad_download_option_is_refused(tmp_path):
    r = run_data_sh("ljspeech", "--db_dir", tmp_path, "--download", "maybe")
    assert r.returncode != 0 and "--download takes auto, true or false" in r.stderr


def test_download_without_network_names_url_and_layout(tmp_path):
    url = "http://127.0.0.1:9/LJSpeech-1.1.tar.bz2"  # nothing listens on the discard port
    r = run_data_sh("ljspeech", "--db_dir", tmp_path / "db", "--data_dir", tmp_path / "data", "--url", url)
    assert r.returncode != 0
    assert url in r.stderr and "LJSpeech-1.1/metadata.csv" in r.stderr


def _archive(src, dest):
    with tarfile.open(dest, "w:bz2") as tf:
        tf.add(src / "LJSpeech-1.1", arcname="LJSpeech-1.1")
    return dest


def test_download_extracts_the_archive(tmp_path):
    make_ljspeech(tmp_path / "src", n=8, missing_wav=False)
    archive = _archive(tmp_path / "src", tmp_path / "mirror.tar.bz2")
    db, data = tmp_path / "db", tmp_path / "data"
    # --download auto: the corpus is absent, so it is fetched (here from a local mirror)
    r = run_data_sh("ljspeech", "--db_dir", db, "--data_dir", data, "--url", archive.as_uri(),
                    "--n_dev", 2, "--n_test", 2)
    assert r.returncode == 0, r.stderr
    assert (db / "LJSpeech-1.1" / "wavs" / "LJ001-0001.wav").is_file()
    assert len(read_kv(data / "train" / "text")) == 4
    # present now: auto does not download again (an unreachable URL would fail otherwise)
    r = run_data_sh("ljspeech", "--db_dir", db, "--data_dir", data, "--url", "http://127.0.0.1:9/x.tar.bz2",
                    "--n_dev", 2, "--n_test", 2)
    assert r.returncode == 0, r.stderr


def test_a_corrupt_official_archive_is_refused(tmp_path):
    make_ljspeech(tmp_path / "src", n=4, missing_wav=False)
    # under the official name the known checksum applies, and this archive does not match it
    archive = _archive(tmp_path / "src", tmp_path / "LJSpeech-1.1.tar.bz2")
    r = run_data_sh("ljspeech", "--db_dir", tmp_path / "db", "--data_dir", tmp_path / "data",
                    "--download", "true", "--url", archive.as_uri())
    assert r.returncode != 0
    assert "sha256" in r.stderr and "expected be1a3045" in r.stderr
    assert not (tmp_path / "db" / "LJSpeech-1.1").exists()


def test_scripts_have_help():
    assert help_exit_codes("ljspeech") == {"data.sh": 0, "download.py": 0, "prepare_data.py": 0}
