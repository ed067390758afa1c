"""egs/libritts_r/rl1/local/data.sh on a tiny LibriTTS-R in the real layout."""

import importlib.util
import tarfile

from corpus_fixtures import (
    LIBRITTS_SPEAKERS,
    REPO,
    check_data_dir,
    check_prompts,
    help_exit_codes,
    load_wav,
    make_libritts_r,
    read_kv,
    run_data_sh,
    validate,
)

RECIPE = REPO / "egs" / "libritts_r" / "rl1"


def _readers(subset):
    return {r for r, (_, s, _, _) in LIBRITTS_SPEAKERS.items() if s == subset}


def test_prepares_train_dev_test(tmp_path):
    db, data = tmp_path / "db", tmp_path / "data"
    fx = make_libritts_r(db)
    r = run_data_sh("libritts_r", "--db_dir", db, "--download", "false", "--data_dir", data)
    assert r.returncode == 0, r.stderr
    # the wav without .normalized.txt is reported
    skipped_utt = fx["no_text"].replace("_", "-", 1)
    assert "skipped 1 of " in r.stderr and skipped_utt in r.stderr
    assert read_kv(data / "local" / "skipped_utts") == [(skipped_utt, "without a .normalized.txt")]

    for name, subset in (("train", "train-clean-100"), ("dev", "dev-clean"), ("test", "test-clean")):
        files = check_data_dir(data / name, labels=("lang", "gender"))
        assert set(files["utt2spk"].values()) == _readers(subset)  # train-clean-360 is not used
        for utt, text in files["text"].items():
            assert text == fx["normalized"][utt.replace("-", "_", 1)]
        for utt, gender in files["utt2gender"].items():
            assert gender == LIBRITTS_SPEAKERS[files["utt2spk"][utt]][0].lower()
        assert set(files["utt2lang"].values()) == {"en"}
        res = validate(data / name)
        assert res is None or res.returncode == 0, res.stdout + res.stderr
    train = read_kv(data / "train" / "utt2spk")
    # reader 2002 sorts before reader 200 by utterance id only if '_' follows the reader
    assert [s for _, s in train] == sorted(s for _, s in train)
    check_prompts(data / "test", check_data_dir(data / "test"))

    spec = dict(read_kv(data / "test" / "wav.scp"))["1089-134686_000001_000001"]
    audio, fs = load_wav(spec)
    assert fs == 16000 and abs(len(audio) - 0.4 * 16000) <= 2


def test_genders_from_librispeech_style_speakers_txt(tmp_path):
    db, data = tmp_path / "db", tmp_path / "data"
    make_libritts_r(db, speaker_file="SPEAKERS.txt")
    r = run_data_sh("libritts_r", "--db_dir", db, "--download", "false", "--data_dir", data)
    assert r.returncode == 0, r.stderr
    assert "SPEAKERS.txt" in r.stderr
    for name in ("train", "dev", "test"):
        files = check_data_dir(data / name, labels=("lang", "gender"))
        for utt, gender in files["utt2gender"].items():
            assert gender == LIBRITTS_SPEAKERS[files["utt2spk"][utt]][0].lower()


def test_without_speaker_metadata_no_gender(tmp_path):
    db, data = tmp_path / "db", tmp_path / "data"
    make_libritts_r(db, speaker_file=None)
    r = run_data_sh("libritts_r", "--db_dir", db, "--download", "false", "--data_dir", data,
                    "--train_subsets", "train-clean-100,train-clean-360")
    assert r.returncode == 0, r.stderr
    assert "utt2gender is not written" in r.stderr
    assert not (data / "train" / "utt2gender").exists()
    files = check_data_dir(data / "train", labels=("lang",))
    assert set(files["utt2spk"].values()) == _readers("train-clean-100") | _readers("train-clean-360")


def test_missing_subset_fails_naming_the_path(tmp_path):
    db = tmp_path / "db"
    make_libritts_r(db)
    r = run_data_sh("libritts_r", "--db_dir", db, "--download", "false", "--data_dir", tmp_path / "data",
                    "--test_subset", "test-other")
    assert r.returncode != 0
    assert str(db / "LibriTTS_R" / "test-other") in r.stderr
    assert not (tmp_path / "data" / "train").exists()


def _mirror(tmp_path):
    """The dev-clean and test-clean archives and doc.tar.gz of a tiny corpus, laid out as on
    openslr; its train-clean-100 is moved to db/LibriTTS_R as if downloaded before."""
    src, mirror, db = tmp_path / "src", tmp_path / "mirror", tmp_path / "db"
    make_libritts_r(src)
    mirror.mkdir()
    for subset in ("dev-clean", "test-clean"):
        with tarfile.open(mirror / f"{subset.replace('-', '_')}.tar.gz", "w:gz") as tf:
            tf.add(src / "LibriTTS_R" / subset, arcname=f"LibriTTS_R/{subset}")
    with tarfile.open(mirror / "doc.tar.gz", "w:gz") as tf:
        tf.add(src / "LibriTTS_R" / "speakers.tsv", arcname="LibriTTS_R/speakers.tsv")
    (db / "LibriTTS_R").mkdir(parents=True)
    (src / "LibriTTS_R" / "train-clean-100").rename(db / "LibriTTS_R" / "train-clean-100")
    return mirror, db


def test_download_fetches_only_absent_subsets(tmp_path, monkeypatch):
    mirror, db = _mirror(tmp_path)
    spec = importlib.util.spec_from_file_location("libritts_r_download", RECIPE / "local" / "download.py")
    download = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(download)
    monkeypatch.setattr(download, "CHECKSUMS", {})  # the tiny archives cannot match the real ones
    # the mirror has no train_clean_100.tar.gz: fetching it would fail
    download.download(db, ["train-clean-100", "dev-clean", "test-clean"], mirror.as_uri())
    top = db / "LibriTTS_R"
    assert sorted(p.name for p in top.iterdir() if p.is_dir()) == ["dev-clean", "test-clean", "train-clean-100"]
    assert (top / "speakers.tsv").is_file()
    assert (top / "dev-clean" / "84" / "121123" / "84_121123_000000_000000.wav").is_file()
    assert not [p for p in top.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_download_checks_the_official_checksums(tmp_path):
    mirror, db = _mirror(tmp_path)
    r = run_data_sh("libritts_r", "--db_dir", db, "--data_dir", tmp_path / "data", "--base_url", mirror.as_uri())
    assert r.returncode != 0 and "dev_clean.tar.gz has md5" in r.stderr
    assert not (db / "LibriTTS_R" / "dev-clean").exists()


def test_download_without_network_names_url_and_layout(tmp_path):
    r = run_data_sh("libritts_r", "--db_dir", tmp_path / "db", "--data_dir", tmp_path / "data",
                    "--base_url", "http://127.0.0.1:9/141")
    assert r.returncode != 0
    assert "http://127.0.0.1:9/141/train_clean_100.tar.gz" in r.stderr
    assert "LibriTTS_R/<subset>/<reader>/<chapter>/*.wav" in r.stderr


def test_scripts_have_help():
    assert help_exit_codes("libritts_r") == {"data.sh": 0, "download.py": 0, "prepare_data.py": 0}
