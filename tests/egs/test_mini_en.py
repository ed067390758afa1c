"""egs/mini_en/rl1/local: the espeak-ng corpus (grammar, speakers, degradations, data.sh).

The corpus tests build a tiny corpus (24 train, 8 dev, 8 test, 8 test_hard utterances)
twice with the same seed and once more on top of the first, in a few seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpus_fixtures import REPO, check_data_dir, help_exit_codes, read_kv, run_data_sh, validate

LOCAL = REPO / "egs" / "mini_en" / "rl1" / "local"
SETS = ("train", "dev", "test", "test_hard")
LABELS = ("gender", "age", "emo", "quality", "degrade", "dur", "lang")
TINY = ("--num_train", "24", "--num_dev", "8", "--num_test", "8", "--num_test_hard", "8", "--nj", "2")

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def load_local(name: str):
    """Import egs/mini_en/rl1/local/<name>.py under a name no other recipe uses."""
    spec = importlib.util.spec_from_file_location(f"mini_en_local_{name}", LOCAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sentences = load_local("sentences")
speakers = load_local("speakers")
degrade = load_local("degrade")


# ---------------------------------------------------------------------------- grammar


def test_grammar_gives_many_distinct_sentences_of_common_words():
    sents = sentences.generate_sentences(2500, random.Random(0))
    assert len(sents) == len(set(sents)) == 2500
    for s in sents:
        assert re.fullmatch(r"[a-z' .,?]+", s), s
        assert 4 <= sentences.num_words(s) <= 14, s
        assert sentences.out_of_vocabulary(s) == [], s
    # the lexicon is a curated list of common words, not a dictionary
    assert len(sentences.VOCAB) < 1500
    assert all(re.fullmatch(r"[a-z']+", w) and len(w) <= 12 for w in sentences.VOCAB)


def test_grammar_is_deterministic_and_excludes():
    a = sentences.generate_sentences(300, random.Random(7))
    assert a == sentences.generate_sentences(300, random.Random(7))
    b = sentences.generate_sentences(300, random.Random(8), exclude=set(a))
    assert not set(a) & set(b)


def test_hard_sentences():
    hard = sentences.generate_hard_sentences(40, random.Random(0))
    assert len(set(hard)) == 40
    for s in hard:
        assert re.fullmatch(r"[a-z' .,?]+", s), s
        assert sentences.out_of_vocabulary(s) == [], s
    lengths = [sentences.num_words(s) for s in hard]
    assert sum(20 <= n <= 30 for n in lengths) >= 10  # one in four is long
    assert any(re.search(r"\b(\w+)( \1){2,}\b", s) for s in hard)  # "go go go"
    assert any("hundred" in s or "thousand" in s for s in hard)


def test_number_to_words():
    n = sentences.number_to_words
    assert n(0) == "zero"
    assert n(13) == "thirteen"
    assert n(40) == "forty"
    assert n(95) == "ninety five"
    assert n(105) == "one hundred and five"
    assert n(2000) == "two thousand"
    assert n(3782) == "three thousand seven hundred and eighty two"
    with pytest.raises(ValueError):
        n(-1)


# ---------------------------------------------------------------------------- speakers


def test_speakers_table():
    spks = speakers.SPEAKERS
    assert len(spks) >= 12
    assert len({s.spk for s in spks}) == len(spks)
    assert {s.gender for s in spks} == {"m", "f"}
    assert {s.age for s in spks} == {"child", "young", "adult", "senior"}
    assert all(re.fullmatch(r"spk\d\d", s.spk) for s in spks)
    assert all(not s.voice.startswith("mb") and 0 <= s.pitch <= 99 for s in spks)
    assert set(speakers.EMOTIONS) == {"neutral", "happy", "sad", "angry"}
    assert speakers.DEGRADATIONS["clean"].quality == 5
    assert all(1 <= d.quality < 5 for n, d in speakers.DEGRADATIONS.items() if n != "clean")


def test_age_rule():
    age = speakers.age_group
    assert age(85, 190, "f2") == "child"
    assert age(85, 150, "f2") == "young"  # a high but slow voice is not a child
    assert age(40, 140, "m1") == "senior"
    assert age(50, 170, "grandma") == "senior"
    assert age(65, 170, "m3") == "young"
    assert age(45, 165, "m1") == "adult"


@needs_espeak
def test_speakers_sound_different():
    """espeak-ng ignores an unknown variant silently: every speaker must give other audio."""
    speakers.check_espeak()
    digests = set()
    for s in speakers.SPEAKERS:
        out = subprocess.run(
            [
                "espeak-ng",
                "-v",
                s.espeak_voice,
                "-p",
                str(s.pitch),
                "-s",
                str(s.speed),
                "--stdout",
                "the cat sat on the mat.",
            ],
            capture_output=True,
            check=True,
        ).stdout
        digests.add(hashlib.sha1(out).hexdigest())
    assert len(digests) == len(speakers.SPEAKERS)


# ---------------------------------------------------------------------------- degradations


def _speechlike(n=16000, sr=16000):
    t = np.arange(n) / sr
    return (0.5 * np.sin(2 * np.pi * 200 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.mark.parametrize("snr", [5, 10, 20])
@pytest.mark.parametrize("color", ["white", "pink"])
def test_add_noise_snr(snr, color):
    x = _speechlike()
    noise = degrade.make_noise(x, snr, np.random.default_rng(0), color)
    active = np.abs(x) > np.max(np.abs(x)) * 0.01
    measured = 10 * np.log10(np.mean(x[active] ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.1)
    y = degrade.add_noise(x, snr, np.random.default_rng(0), color)
    assert np.max(np.abs(y)) <= degrade.PEAK + 1e-6
    assert np.corrcoef(y, x + noise)[0, 1] > 0.999  # only rescaled


def test_clip_and_lowpass():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(16000)).astype(np.float32)
    y = degrade.clip(x)
    assert np.mean(np.abs(y) >= np.max(np.abs(y)) - 1e-6) == pytest.approx(degrade.CLIP_FRACTION, abs=0.01)
    z = degrade.lowpass(x, 16000, 4000.0)
    spec = np.abs(np.fft.rfft(z)) ** 2
    freqs = np.fft.rfftfreq(len(z), 1 / 16000)
    assert spec[freqs > 5000].sum() < 1e-3 * spec[freqs < 3000].sum()
    with pytest.raises(ValueError):
        degrade.degrade(x, 16000, "reverb", rng)


def test_degradations_are_deterministic():
    x = _speechlike()
    for name in speakers.DEGRADATIONS:
        a = degrade.degrade(x, 16000, name, np.random.default_rng(3))
        b = degrade.degrade(x, 16000, name, np.random.default_rng(3))
        assert np.array_equal(a, b) and a.dtype == np.float32 and len(a) == len(x)


def test_high_shelf_tilts_the_spectrum():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    y = degrade.high_shelf(x, 22050, 8.0)
    spec_x, spec_y = (np.abs(np.fft.rfft(v)) ** 2 for v in (x, y))
    f = np.fft.rfftfreq(len(x), 1 / 22050)
    hi, lo = f > 5000, (f > 50) & (f < 500)
    assert 10 * np.log10(spec_y[hi].sum() / spec_x[hi].sum()) == pytest.approx(8.0, abs=1.0)
    assert 10 * np.log10(spec_y[lo].sum() / spec_x[lo].sum()) == pytest.approx(0.0, abs=0.5)


# ---------------------------------------------------------------------------- the corpus


def md5(path: str) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three runs: A, B (same seed, other folders) and A again (resumes)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("mini_en")
    runs = {}
    for name, data, db in (("a", "data_a", "db_a"), ("b", "data_b", "db_b")):
        r = run_data_sh("mini_en", *TINY, "--seed", "3", "--data_dir", root / data, "--db_dir", root / db)
        assert r.returncode == 0, r.stdout + r.stderr
        runs[name] = r
    wavs = sorted((root / "db_a").rglob("*.wav"))
    mtimes = {p: p.stat().st_mtime_ns for p in wavs}
    text_before = (root / "data_a" / "train" / "text").read_bytes()
    r = run_data_sh("mini_en", *TINY, "--seed", "3", "--data_dir", root / "data_a", "--db_dir", root / "db_a")
    assert r.returncode == 0, r.stdout + r.stderr
    runs["again"] = r
    return {"root": root, "runs": runs, "mtimes": mtimes, "text_before": text_before}


def load_sets(data_root: Path) -> dict[str, dict[str, dict[str, str]]]:
    return {s: check_data_dir(data_root / s, labels=LABELS) for s in SETS}


def test_corpus_files_sorted_and_consistent(corpus):
    sets = load_sets(corpus["root"] / "data_a")
    counts = {s: len(sets[s]["wav.scp"]) for s in SETS}
    assert counts == {"train": 24, "dev": 8, "test": 8, "test_hard": 8}
    all_ids = [u for s in SETS for u in sets[s]["wav.scp"]]
    assert len(set(all_ids)) == len(all_ids)  # ids are unique over the sets
    for s in SETS:
        files = sets[s]
        for utt, spk in files["utt2spk"].items():
            assert re.fullmatch(rf"{spk}-\d{{6}}", utt)
        for path in files["wav.scp"].values():
            assert os.path.isabs(path) and path.startswith(str(corpus["root"] / "db_a" / s))
        r = validate(corpus["root"] / "data_a" / s)
        if r is not None:
            assert r.returncode == 0, r.stdout + r.stderr


def test_corpus_labels(corpus):
    sets = load_sets(corpus["root"] / "data_a")
    genders = {g for s in SETS for g in sets[s]["utt2gender"].values()}
    assert genders == {"m", "f"}
    assert set(sets["train"]["utt2emo"].values()) == {"neutral", "happy", "sad", "angry"}
    spk_by_id = {s.spk: s for s in speakers.SPEAKERS}
    for s in SETS:
        f = sets[s]
        for utt in f["wav.scp"]:
            spk = spk_by_id[f["utt2spk"][utt]]
            assert f["utt2gender"][utt] == spk.gender
            assert f["utt2age"][utt] == spk.age
            assert f["utt2lang"][utt] == "en"
            deg = f["utt2degrade"][utt]
            assert int(f["utt2quality"][utt]) == speakers.DEGRADATIONS[deg].quality
            assert float(f["utt2dur"][utt]) > 0.3
            assert re.fullmatch(r"[a-z' .,?]+", f["text"][utt])
    # about 22 % of train is degraded, exactly rounded
    n_bad = sum(v != "clean" for v in sets["train"]["utt2degrade"].values())
    assert n_bad == round(0.22 * 24)


def test_no_sentence_shared_with_train(corpus):
    sets = load_sets(corpus["root"] / "data_a")
    train = set(sets["train"]["text"].values())
    for s in ("dev", "test", "test_hard"):
        assert not train & set(sets[s]["text"].values()), s
        # held-out speakers are train speakers (zero-shot prompts come from train)
        assert set(sets[s]["utt2spk"].values()) <= set(sets["train"]["utt2spk"].values())


def test_prompts_come_from_train(corpus):
    sets = load_sets(corpus["root"] / "data_a")
    train = sets["train"]
    by_wav = {wav: utt for utt, wav in train["wav.scp"].items()}
    for s in ("dev", "test", "test_hard"):
        d = corpus["root"] / "data_a" / s
        prompt_scp, prompt_text = dict(read_kv(d / "prompt.scp")), dict(read_kv(d / "prompt_text"))
        assert list(prompt_scp) == list(prompt_text) == list(sets[s]["wav.scp"])
        for utt, wav in prompt_scp.items():
            other = by_wav[wav]  # a train utterance ...
            assert train["utt2spk"][other] == sets[s]["utt2spk"][utt]  # ... of the same speaker
            assert prompt_text[utt] == train["text"][other] != sets[s]["text"][utt]


def test_wavs(corpus):
    sets = load_sets(corpus["root"] / "data_a")
    for s in SETS:
        for utt, path in sets[s]["wav.scp"].items():
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert info.frames > 1600
            assert float(sets[s]["utt2dur"][utt]) == pytest.approx(info.frames / 16000, abs=1e-3)
            x, _ = sf.read(path)
            assert np.max(np.abs(x)) > 0.05


def test_same_seed_same_corpus(corpus):
    root = corpus["root"]
    for s in SETS:
        for name in ("text", "utt2spk", "spk2utt", *(f"utt2{k}" for k in LABELS), "prompt_text"):
            if (root / "data_a" / s / name).exists() or name != "prompt_text":
                a, b = (root / d / s / name for d in ("data_a", "data_b"))
                assert a.read_bytes() == b.read_bytes(), f"{s}/{name}"
        # espeak-ng is deterministic: the same bytes
        wa = dict(read_kv(root / "data_a" / s / "wav.scp"))
        wb = dict(read_kv(root / "data_b" / s / "wav.scp"))
        assert [md5(wa[u]) for u in wa] == [md5(wb[u]) for u in wb]


def test_second_run_synthesizes_nothing(corpus):
    log = corpus["runs"]["again"].stdout + corpus["runs"]["again"].stderr
    assert "synthesized 0 wavs" in log
    for p, mtime in corpus["mtimes"].items():
        assert p.stat().st_mtime_ns == mtime
    assert (corpus["root"] / "data_a" / "train" / "text").read_bytes() == corpus["text_before"]


@needs_espeak
def test_other_seed_other_text(tmp_path):
    r = run_data_sh(
        "mini_en",
        "--num_train",
        "4",
        "--num_dev",
        "1",
        "--num_test",
        "1",
        "--num_test_hard",
        "1",
        "--seed",
        "4",
        "--data_dir",
        tmp_path / "data",
        "--db_dir",
        tmp_path / "db",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    other = set(dict(read_kv(tmp_path / "data" / "train" / "text")).values())
    assert len(other) == 3  # ceil(0.75 * 4) distinct sentences, one read twice
    assert len(dict(read_kv(tmp_path / "data" / "train" / "utt2spk"))) == 4


# ---------------------------------------------------------------------------- failures and help


def test_help_exits_zero():
    codes = help_exit_codes("mini_en")
    assert codes and all(c == 0 for c in codes.values()), codes


def test_bad_option_fails(tmp_path):
    r = run_data_sh("mini_en", "--no_such_option", "1")
    assert r.returncode != 0 and "invalid option" in r.stderr
    r = run_data_sh("mini_en", "--num_train", "0", "--data_dir", tmp_path / "d", "--db_dir", tmp_path / "w")
    assert r.returncode != 0 and "num_train" in r.stderr


def test_missing_espeak_says_how_to_install(tmp_path):
    """With espeak-ng off PATH, data.sh stops and points to 'cd tools && make'."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "date", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    r = subprocess.run(["bash", "local/data.sh", "--data_dir", str(tmp_path / "d")], cwd=LOCAL.parent,
                       env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode != 0
    assert "espeak-ng" in r.stderr and "cd " in r.stderr and "tools && make" in r.stderr
    assert not (tmp_path / "d").exists()
