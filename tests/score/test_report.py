"""ttsrl.score.report (the HTML report) and make_report --html_dir, without a browser."""

import json
import os
import re
import shutil

import pytest
import soundfile as sf
from report_fixtures import SETS, make_fake_exp

from ttsrl.bin import make_report
from ttsrl.score.report import (
    SetReport,
    confidence_intervals,
    pick_examples,
    read_per_utt,
    read_train_log,
    render_html,
    report_model_order,
    write_html_report,
)
from ttsrl.score.report_plots import model_colors, nice_ticks


@pytest.fixture
def fake(tmp_path):
    return make_fake_exp(tmp_path)


def audio_srcs(page: str) -> list[str]:
    return re.findall(r'<audio controls preload="metadata" src="([^"]+)">', page)


def test_pick_examples_is_deterministic_and_spread():
    utts = [f"u{i:02d}" for i in range(10)]
    assert pick_examples(utts, 4) == ["u00", "u02", "u05", "u07"]
    assert pick_examples(utts, 4) == pick_examples(list(utts), 4)
    assert pick_examples(utts, 20) == utts
    assert pick_examples(utts, 0) == [] and pick_examples([], 3) == []


def test_full_report(fake, tmp_path):
    html_dir = tmp_path / "exp" / "report"
    report = write_html_report(fake["results"], str(html_dir), data_dir=fake["data"], num_examples=2)
    assert report.problems == []
    page = (html_dir / "index.html").read_text(encoding="utf-8")
    # 2 sets x 2 examples x (prompt, ground truth, base, dpo)
    srcs = audio_srcs(page)
    assert len(srcs) == 16 and len(set(srcs)) == 16
    for src in srcs:
        assert not os.path.isabs(src) and src.startswith("audio/")
        info = sf.info(html_dir / src)
        assert info.format == "WAV" and info.samplerate == 16000 and info.frames == 16000
    for ts in SETS:
        for kind in ("metrics", "cer", "mels"):
            png = html_dir / f"{ts}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'<img src="{ts}_{kind}.png"' in page
    # the tables: one per group of metrics, ground_truth first, formatted values
    groups = re.findall(r'<table class="metrics" data-group="([^"]+)">', page)
    assert groups == ["Intelligibility", "Voice, prosody and quality", "Cost and coverage"] * 2
    section = page.split('id="set-test"')[1]
    table = section.split('<table class="metrics" data-group="Intelligibility">')[1].split("</table>")[0]
    assert table.index("ground_truth</td>") < table.index("base</td>") < table.index("dpo</td>")
    assert '<th title="character error rate, the mean of per-utterance rates (lower is better)">CER (%) ' \
           '<span class="dir">\u2193</span></th>' in table
    # dpo: the best CER (2.00), 2 points better than base, with the 95 % CI of its per_utt.tsv (3 utterances:
    # 5 i + 2, sd 5: 1.96 x 5 / sqrt 3 = 5.66)
    assert '<td class="best">2.00<span class="ci" title="95 % confidence interval">\u00b15.66</span>' \
           '<span class="delta better" title="change from base">\u22122.00</span></td>' in table
    assert "position: sticky" in page
    voice = section.split('data-group="Voice, prosody and quality">')[1].split("</table>")[0]
    assert '<td class="best">0.700' in voice and '<span class="delta better" title="change from base">+0.100' in voice
    # the trade-off scatters: CER vs KL (base at KL 0) and SIM vs CER, a point per model
    assert page.count('<svg class="tradeoff"') == 4
    svg = section.split('<svg class="tradeoff"')[1].split("</svg>")[0]
    assert "CER vs KL" in svg and 'data-model="base"' in svg and 'data-model="dpo"' in svg
    assert "<title>base: KL to the base LM 0.0000, CER (%) 4.00 \u00b1 5.66</title>" in svg
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in page


def test_report_model_order_and_colors():
    assert report_model_order(["dpo_dmo", "base_dmo", "dpo", "resynth_dmo", "base", "resynth"]) == [
        "resynth", "resynth_dmo", "base", "base_dmo", "dpo", "dpo_dmo"]
    tags = ["speechalign", "raft", "resynth", "base", "dpo_iter1", "ground_truth", "dpo", "speechalign_iter1",
            "diffro_happy", "diffro", "zzz", "coh", "dpo_iter2"]  # fmt: skip
    assert report_model_order(tags) == ["ground_truth", "resynth", "base", "dpo_iter1", "dpo_iter2", "dpo",
                                        "speechalign_iter1", "speechalign", "raft", "coh", "diffro", "diffro_happy",
                                        "zzz"]  # fmt: skip
    colors = model_colors(report_model_order(tags))
    methods = [c for m, c in colors.items() if m not in ("ground_truth", "resynth")]
    assert len(set(methods)) == len(methods) == 11  # no two models share a colour (ground_truth vs speechalign_iter1)
    assert len(set(model_colors([f"m{i}" for i in range(18)]).values())) == 18


def test_confidence_intervals_and_train_log(tmp_path):
    rows = {"a": {"status": "ok", "cer": "10", "emo_ok": "100.0"}, "b": {"status": "ok", "cer": "20", "emo_ok": "0.0"},
            "c": {"status": "missing", "cer": "90"}}  # fmt: skip
    ci = confidence_intervals(rows)
    assert ci["cer"] == pytest.approx(1.96 * 50**0.5 / 2**0.5)  # sd of (10, 20) = sqrt(50); the missing row is out
    assert ci["emo_acc"] == pytest.approx(1.96 * 50 * 2**0.5 / 2**0.5)  # (100, 0): sd 50 sqrt 2
    assert "sim" not in ci  # no column
    log = tmp_path / "train.log"
    log.write_text("2025 INFO ttsrl.train.trainer: epoch 0 step 10 batch 10: loss 2.5 acc 0.1 lr 1.000e-04 "
                   "grad_norm 1 (2.00 steps/s)\nsomething else\n"
                   "2025 INFO ttsrl.train.trainer: validation at step 50 (epoch 0): loss 1.25 kl 0.1; best loss 1.25\n"
                   "epoch 1 step 60 batch 5: pref_loss 0.6 loss 0.5 lr 1e-4\n")  # fmt: skip
    assert read_train_log(str(log)) == {"train": [(10, 2.5), (60, 0.5)], "valid": [(50, 1.25)]}
    assert nice_ticks(0.0, 0.26) == [0.0, 0.1, 0.2, 0.3]
    assert nice_ticks(1.94, 2.14)[0] <= 1.94 and nice_ticks(1.94, 2.14)[-1] >= 2.14


def test_side_models_and_training_curves(fake, tmp_path):
    exp = fake["exp"]
    os.makedirs(os.path.join(exp, "reward"))
    with open(os.path.join(exp, "reward", "metrics.json"), "w") as f:
        json.dump({"spearman_vs_judge": -0.42, "ctc_cer": 9.5, "dev_utts": 120}, f)
    for sub in ("tokenizer", "dpo/lm"):
        os.makedirs(os.path.join(exp, sub), exist_ok=True)
        with open(os.path.join(exp, sub, "train.log"), "w") as f:
            f.write("".join(f"epoch 0 step {s} batch {s}: loss {3 / s:.3f} lr 1e-4\n" for s in (10, 20, 30)))
    report = write_html_report(fake["results"], str(tmp_path / "r"), data_dir=fake["data"], num_examples=1)
    page = open(report.index, encoding="utf-8").read()
    assert '<h2 id="models">The models behind the numbers</h2>' in page
    assert "<td>spearman_vs_judge</td><td class=\"num\">-0.42</td><td class=\"help\">Spearman of the reward" in page
    assert "no metrics.json in" in page  # the tokenizer has a log but no metrics
    assert report.curves_png == "training_curves.png" and (tmp_path / "r" / "training_curves.png").is_file()
    assert '<img src="training_curves.png"' in page


def test_texts_are_escaped(fake, tmp_path):
    report = write_html_report(fake["results"], str(tmp_path / "r"), data_dir=fake["data"], num_examples=3)
    page = open(report.index, encoding="utf-8").read()
    assert "hello &lt;b&gt;bold&lt;/b&gt; &amp; world" in page
    assert "prompt of u1 &lt;i&gt;" in page
    assert "<b>" not in page and "<i>" not in page
    assert "judge heard: hello &lt;b&gt;bold&lt;/b&gt; &amp; world &amp; more" in page
    # and the same for what a caller passes in
    page = render_html([SetReport("t", [], {}, problems=['a <script>"x"</script>'])], command="run.sh --x '<y>'")
    assert "<script>" not in page and "&lt;script&gt;&quot;x&quot;" in page and "&#x27;&lt;y&gt;&#x27;" in page


def test_missing_inputs_are_listed_not_fatal(fake, tmp_path, caplog):
    exp, data = fake["exp"], fake["data"]
    os.remove(os.path.join(exp, "dpo", "decode", "test", "score", "per_utt.tsv"))
    os.remove(os.path.join(exp, "base", "decode", "test", "wav", "u1.wav"))  # in wav.scp, not on disk
    with open(os.path.join(exp, "base", "decode", "test", "wav", "u2.wav"), "wb") as f:
        f.write(b"RIFF not really a wav")  # corrupt
    os.remove(os.path.join(exp, "dpo", "decode", "hard", "wav.scp"))
    os.remove(os.path.join(data, "hard", "prompt.scp"))
    with open(os.path.join(exp, "ground_truth", "hard", "score", "per_utt.tsv"), "w") as f:
        f.write("no header\n")
    html_dir = tmp_path / "report"
    report = write_html_report(fake["results"], str(html_dir), data_dir=data, num_examples=2,
                               test_sets=["test", "hard", "nope"])  # fmt: skip
    problems = "\n".join(report.problems)
    for expected in ["test: dpo: no per-utterance scores", "test: u1: base audio unreadable (audio file not found",
                     "test: u2: base audio unreadable (cannot decode", "hard: dpo: no decoded audio",
                     "hard: ground_truth: unreadable per-utterance scores", "no prompt.scp",
                     "test set nope is not in"]:  # fmt: skip
        assert expected in problems
    assert len(report.problems) == 7  # set-level causes are not repeated per utterance
    page = (html_dir / "index.html").read_text(encoding="utf-8")
    assert page.count('<div class="missing">missing:') == 2 + 2 + 2  # base u1/u2, dpo hard x2, prompts hard x2
    assert "no decode wav.scp" in page and "not in prompt.scp" in page
    # collapsed at the end of each set, one line per model and cause
    block = page.split('<details class="problems">')[1].split("</details>")[0]
    assert "3 input(s) missing or unreadable" in block
    assert "<li>base: 2 of 2 example clip(s) unreadable (u1: audio file not found" in block
    assert page.index('<details class="problems">') > page.index('<h3>Examples')
    assert len(audio_srcs(page)) == 16 - 6
    assert all(os.path.isfile(html_dir / s) for s in audio_srcs(page))
    assert "no per-utterance scores" in caplog.text  # logged too


def test_no_data_dir_uses_the_scored_texts(fake, tmp_path):
    shutil.rmtree(fake["data"])
    report = write_html_report(fake["results"], str(tmp_path / "r"), data_dir=fake["data"], num_examples=1)
    assert [len(s.examples) for s in report.sets] == [1, 1]
    assert report.sets[1].examples[0].text == SETS["test"]["u1"]  # sets are sorted: hard, test
    assert sum("data dir not found" in p for p in report.problems) == 2 and len(report.problems) == 2
    assert len(audio_srcs(open(report.index).read())) == 2 * 2  # the models only


def test_read_per_utt(tmp_path):
    p = tmp_path / "per_utt.tsv"
    p.write_text("utt\tstatus\tref\tcer\nu1\tok\ta b\t1.5000\nu2\tmissing\tc\t\n")
    rows = read_per_utt(str(p))
    assert rows["u1"]["cer"] == "1.5000" and rows["u2"]["status"] == "missing"


def test_make_report_cli(fake, tmp_path):
    md, html_dir = tmp_path / "RESULTS.md", tmp_path / "report"
    args = ["--results", fake["results"], "--out", str(md), "--html_dir", str(html_dir),
            "--data_dir", fake["data"], "--num_examples", "3"]  # fmt: skip
    assert make_report.main(args) == 0
    assert "## test" in md.read_text()
    assert len(list(html_dir.glob("audio/test/*/*.wav"))) == 3 * 4
    # a rerun with fewer examples leaves no stale clip behind; --test_sets limits the page
    assert make_report.main(args[:-1] + ["1", "--test_sets", "test"]) == 0
    assert len(list(html_dir.glob("audio/test/*/*.wav"))) == 4
    page = (html_dir / "index.html").read_text()
    assert 'id="set-test"' in page and 'id="set-hard"' not in page
    assert "make_report" in page  # the command
    assert make_report.main(args[:-1] + ["-1"]) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert make_report.main(["--results", str(bad), "--out", str(md), "--html_dir", str(html_dir)]) == 1


def test_help_mentions_html(capsys):
    with pytest.raises(SystemExit) as e:
        make_report.main(["--help"])
    assert e.value.code == 0 and "--html_dir" in capsys.readouterr().out
