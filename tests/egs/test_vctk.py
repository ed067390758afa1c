"""egs/vctk/rl1/local/data.sh on a tiny VCTK-Corpus-0.92 in the real layout."""

import zipfile

from corpus_fixtures import (
    check_data_dir,
    check_prompts,
    help_exit_codes,
    load_wav,
    make_vctk,
    read_kv,
    run_data_sh,
    validate,
)

HELD_OUT = ("--dev_speakers", "p226", "--test_speakers", "p227,p228")


def test_prepares_train_dev_test(tmp_path):
    db, data = tmp_path / "db", tmp_path / "data"
    fx = make_vctk(db)
    r = run_data_sh("vctk", "--db_dir", db, "--download", "false", "--data_dir", data, *HELD_OUT)
    assert r.returncode == 0, r.stderr

    # every gap of the corpus is reported with its count, never dropped silently
    skipped = dict(read_kv(data / "local" / "skipped_utts"))
    assert skipped == {**{u: "without text" for u in fx["no_text"]},
                       **{u: "without mic1 audio" for u in fx["no_audio"]}}
    n = len(fx["texts"]) + len(skipped)
    assert f"skipped {len(skipped)} of {n} utterances" in r.stderr
    assert f"{len(fx['no_text'])} without text" in r.stderr and "1 without mic1 audio" in r.stderr
    assert "speakers without any usable utterance: p315" in r.stderr

    sets = {}
    for name in ("train", "dev", "test"):
        sets[name] = files = check_data_dir(data / name, labels=("lang", "gender", "age"))
        for utt, text in files["text"].items():
            assert text == fx["texts"][utt]  # from txt/<spk>/<utt>.txt
        res = validate(data / name)
        assert res is None or res.returncode == 0, res.stdout + res.stderr
    assert set(sets["train"]["utt2spk"].values()) == {"p225", "p280"}
    assert set(sets["dev"]["utt2spk"].values()) == {"p226"}
    assert set(sets["test"]["utt2spk"].values()) == {"p227", "p228"}
    all_utts = {u for files in sets.values() for u in files["text"]}
    assert all_utts == set(fx["texts"])

    # speaker-info.txt: p225 23 F, p226 22 M, p227 38 M, p228 22 F, p280 25 F
    labels = {}
    for files in sets.values():
        for utt, spk in files["utt2spk"].items():
            labels[spk] = (files["utt2gender"][utt], files["utt2age"][utt])
    assert labels == {"p225": ("f", "young"), "p226": ("m", "young"), "p227": ("m", "adult"),
                      "p228": ("f", "young"), "p280": ("f", "young")}
    check_prompts(data / "test", sets["test"])

    # 48 kHz flac in, 16 kHz wav out
    audio, fs = load_wav(sets["test"]["wav.scp"]["p227_002"])
    assert fs == 16000 and abs(len(audio) - 0.35 * 16000) <= 2


def test_mic2_skips_the_speaker_without_it(tmp_path):
    db, data = tmp_path / "db", tmp_path / "data"
    make_vctk(db)
    r = run_data_sh("vctk", "--db_dir", db, "--download", "false", "--data_dir", data, "--mic", "mic2",
                    *HELD_OUT)
    assert r.returncode == 0, r.stderr
    train = dict(read_kv(data / "train" / "wav.scp"))
    assert {u.split("_")[0] for u in train} == {"p225"}
    assert all("_mic2.flac" in spec for spec in train.values())
    assert "5 without mic2 audio" in r.stderr  # p280's four utterances and p226_004


def test_unknown_held_out_speaker_fails(tmp_path):
    db = tmp_path / "db"
    make_vctk(db)
    # the default held-out lists name real speakers the fixture lacks; p315 has no usable utterance
    r = run_data_sh("vctk", "--db_dir", db, "--download", "false", "--data_dir", tmp_path / "data",
                    "--dev_speakers", "p315", "--test_speakers", "p227")
    assert r.returncode != 0 and "--dev_speakers p315" in r.stderr
    assert not (tmp_path / "data" / "train").exists()


def test_missing_corpus_fails_naming_the_path(tmp_path):
    r = run_data_sh("vctk", "--db_dir", tmp_path / "nowhere", "--download", "false",
                    "--data_dir", tmp_path / "data")
    assert r.returncode != 0
    assert str(tmp_path / "nowhere" / "VCTK-Corpus-0.92" / "speaker-info.txt") in r.stderr


def test_download_extracts_the_zip(tmp_path):
    src, db, data = tmp_path / "src", tmp_path / "db", tmp_path / "data"
    make_vctk(src)
    # like the official zip: the corpus files at the top of the archive, no folder around them
    archive = tmp_path / "vctk_copy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((src / "VCTK-Corpus-0.92").rglob("*")):
            zf.write(path, path.relative_to(src / "VCTK-Corpus-0.92"))
    r = run_data_sh("vctk", "--db_dir", db, "--data_dir", data, "--url", archive.as_uri(), *HELD_OUT)
    assert r.returncode == 0, r.stderr
    assert (db / "VCTK-Corpus-0.92" / "txt" / "p225" / "p225_001.txt").is_file()
    assert len(read_kv(data / "dev" / "text")) == 3


def test_download_without_network_names_url_and_layout(tmp_path):
    url = "http://127.0.0.1:9/VCTK-Corpus-0.92.zip"
    r = run_data_sh("vctk", "--db_dir", tmp_path / "db", "--data_dir", tmp_path / "data", "--url", url)
    assert r.returncode != 0
    assert url in r.stderr and "VCTK-Corpus-0.92/speaker-info.txt" in r.stderr


def test_scripts_have_help():
    assert help_exit_codes("vctk") == {"data.sh": 0, "download.py": 0, "prepare_data.py": 0}
