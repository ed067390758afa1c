"""ttsrl.score.report (the HTML report) and make_report --html_dir, without a browser."""

import os
import re
import shutil

import pytest
import soundfile as sf
from report_fixtures import SETS, make_fake_exp

from ttsrl.bin import make_report
from ttsrl.score.report import SetReport, pick_examples, read_per_utt, render_html, write_html_report


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
    # the metrics table: ground_truth first, formatted values
    table = page.split('<table class="metrics">')[1].split("</table>")[0]
    assert table.index("ground_truth") < table.index(">base<") < table.index(">dpo<")
    assert "<td>4.00</td>" in table and "<td>0.700</td>" in table
    assert "http" not in page and "<script" not in page  # self-contained


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
