"""ttsrl.bin.score and ttsrl.bin.make_report on a tiny espeak-ng test set."""

import json
import shutil
import subprocess
import sys

import pytest

from ttsrl.bin import make_report, score

SENTENCES = {"u1": "hello world", "u2": "the weather is very nice today", "u3": "please close the door"}


def espeak_wav(path, text, voice="en-us"):
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """data/test (text, wav.scp, utt2spk, prompt.scp) and a Seed-TTS-Eval list with relative paths."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (tools/install_system.sh)")
    root = tmp_path_factory.mktemp("score_corpus")
    (root / "wavs").mkdir()
    espeak_wav(root / "wavs" / "prompt.wav", "this is my voice", voice="en-us+f3")
    data = root / "data" / "test"
    data.mkdir(parents=True)
    lines = {"text": [], "wav.scp": [], "utt2spk": [], "prompt.scp": []}
    for utt, text in SENTENCES.items():
        espeak_wav(root / "wavs" / f"{utt}.wav", text)
        lines["text"].append(f"{utt} {text}")
        lines["wav.scp"].append(f"{utt} {root / 'wavs' / (utt + '.wav')}")
        lines["utt2spk"].append(f"{utt} spk1")
        lines["prompt.scp"].append(f"{utt} {root / 'wavs' / 'prompt.wav'}")
    for name, rows in lines.items():
        (data / name).write_text("\n".join(rows) + "\n")
    (data / "spk2utt").write_text("spk1 u1 u2 u3\n")
    lst = root / "seedtts" / "meta.lst"
    lst.parent.mkdir()
    lst.write_text(
        "".join(
            f"{u}|this is my voice|../wavs/prompt.wav|{t}|../wavs/{u}.wav\n" for u, t in SENTENCES.items()
        )
    )
    return root


def read_tsv(path):
    lines = path.read_text().splitlines()
    cols = lines[0].split("\t")
    return {r.split("\t")[0]: dict(zip(cols, r.split("\t"), strict=True)) for r in lines[1:]}


@pytest.mark.parametrize("module", [score, make_report])
def test_help_exits_0(module, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0
    assert "Usage" in capsys.readouterr().out


def test_missing_extra_and_corrupt_wavs(corpus, tmp_path, caplog):
    hyp = tmp_path / "wavs"
    hyp.mkdir()
    shutil.copy(corpus / "wavs" / "u1.wav", hyp / "u1.wav")  # u1 present
    (hyp / "u2.wav").write_bytes(bytes(range(256)) * 20)  # u2 corrupt (random bytes); u3 missing
    shutil.copy(corpus / "wavs" / "u3.wav", hyp / "extra.wav")  # not in the test set
    out, results = tmp_path / "score", tmp_path / "exp" / "results.json"
    rc = score.main(["--data_dir", str(corpus / "data" / "test"), "--wav_dir", str(hyp), "--out_dir", str(out),
                     "--metrics", "wer,cer", "--results", str(results), "--model_tag", "base"])  # fmt: skip
    assert rc == 0
    rows = read_tsv(out / "per_utt.tsv")
    assert {u: r["status"] for u, r in rows.items()} == {"u1": "ok", "u2": "corrupt", "u3": "missing"}
    assert "hello" in rows["u1"]["hyp"] or "world" in rows["u1"]["hyp"]
    assert float(rows["u1"]["wer"]) < 100
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"]["n_missing"] == 2 and result["metrics"]["n_utts"] == 3
    assert set(result["missing"]) == {"u2", "u3"} and result["extra"] == ["extra"]
    assert "u2" in (out / "missing.txt").read_text()
    assert "extra" in caplog.text and "ignored" in caplog.text
    stored = json.loads(results.read_text())["base"]["test"]
    assert stored["n_missing"] == 2 and "wer" in stored and "cer_corpus" in stored
    # --strict: the same wavs are fatal, exit 1
    assert score.main(["--data_dir", str(corpus / "data" / "test"), "--wav_dir", str(hyp),
                       "--out_dir", str(tmp_path / "s2"), "--metrics", "wer", "--strict"]) == 1  # fmt: skip


def test_ground_truth_all_metrics_and_report(corpus, tmp_path):
    out, results = tmp_path / "score", tmp_path / "exp" / "results.json"
    rc = score.main(["--data_dir", str(corpus / "data" / "test"), "--out_dir", str(out), "--model_tag",
                     "ground_truth", "--results", str(results), "--judge_tag", "pocketsphinx"])  # fmt: skip
    assert rc == 0
    stored = json.loads(results.read_text())["ground_truth"]["test"]
    assert {"wer@pocketsphinx", "cer@pocketsphinx", "sim", "f0v", "dnsmos", "n_utts"} <= set(stored)
    assert stored["n_missing"] == 0 and 1.0 <= stored["dnsmos"] <= 5.0 and -1 <= stored["sim"] <= 1
    rows = read_tsv(out / "per_utt.tsv")
    assert all(r["status"] == "ok" and r["sim"] and r["f0v"] for r in rows.values())
    md = tmp_path / "exp" / "RESULTS.md"
    assert make_report.main(["--results", str(results), "--out", str(md)]) == 0
    text = md.read_text()
    assert "## test" in text and "| ground_truth |" in text and "WER (%) [pocketsphinx]" in text
    assert "make_report" in text  # the command in the header
    # ground truth with a wav dir, or another tag without one, is a usage error
    assert score.main(["--data_dir", str(corpus / "data" / "test"), "--out_dir", str(out), "--model_tag", "base",
                       "--metrics", "wer"]) == 1  # fmt: skip


def test_seedtts_list_with_relative_paths(corpus, tmp_path):
    hyp = tmp_path / "wavs"
    shutil.copytree(corpus / "wavs", hyp)
    out = tmp_path / "score"
    rc = score.main(["--seedtts_list", str(corpus / "seedtts" / "meta.lst"), "--wav_dir", str(hyp),
                     "--out_dir", str(out), "--metrics", "wer,sim", "--model_tag", "base"])  # fmt: skip
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    assert result["test_set"] == "meta" and result["sim_reference"] == "prompt_wav"
    assert result["metrics"]["n_missing"] == 0 and "sim" in result["metrics"]
    rows = read_tsv(out / "per_utt.tsv")
    assert rows["u2"]["ref"] == SENTENCES["u2"] and rows["u2"]["sim"]


def test_bad_input_exits_1(tmp_path):
    assert score.main(["--data_dir", str(tmp_path / "nope"), "--out_dir", str(tmp_path / "o")]) == 1
    assert (
        score.main(["--data_dir", str(tmp_path), "--out_dir", str(tmp_path / "o"), "--metrics", "bleu"]) == 1
    )
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    assert make_report.main(["--results", str(bad), "--out", str(tmp_path / "R.md")]) == 1


def test_module_runs_as_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ttsrl.bin.score", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--wav_dir" in proc.stdout
