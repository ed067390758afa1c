"""The HTML report in a real browser: headless Chromium loads exp/report/index.html over HTTP.

Two pages: a tiny one (2 models, 2 sets; every player and plot fetched and checked) and a
realistic one around the committed egs/mini_en/rl1/exp/results.json (11 models, 120 and 80
utterances): its rendered DOM must hold the grouped metric tables, the trade-off scatters with a
point per model and the audio players, and its screenshot is written (keep it with
TTSRL_KEEP_SCREENSHOT=/tmp/report.png to look at it).

Chromium comes from tools/install_system.sh (Debian package ``chromium``). Without it the tests
are skipped locally and fail under CI (the ``CI`` environment variable set), so CI cannot pass
without ever running them. Each Chromium run is killed after CHROMIUM_TIMEOUT seconds.
"""

import functools
import http.server
import io
import os
import shutil
import signal
import subprocess
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from report_fixtures import SETS, make_exp_like, make_fake_exp

from ttsrl.score.report import write_html_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_TIMEOUT = 60
NUM_EXAMPLES = 2
ROLES = 4  # prompt, ground truth, base, dpo


@pytest.fixture(scope="module")
def chromium():
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: run tools/install_system.sh (Debian package chromium)")
        pytest.skip("no chromium binary (neither chromium nor chromium-browser on PATH, nor /usr/bin/chromium): "
                    "bash tools/install_system.sh installs Debian's chromium")
    return CHROMIUM


REPO = Path(__file__).resolve().parents[2]
MINI_EN_RESULTS = REPO / "egs" / "mini_en" / "rl1" / "exp" / "results.json"


class _Page(HTMLParser):
    """What a DOM dump holds: the src of every <audio> and <img>, the metric tables (their group and
    rows) and the trade-off scatters (the models of their points)."""

    def __init__(self):
        super().__init__()
        self.audio: list[str] = []
        self.img: list[str] = []
        self.tables: list[tuple[str, int]] = []  # (data-group, rows with a model cell)
        self.scatters: list[list[str]] = []  # per <svg class="tradeoff">: data-model of its points
        self.sticky_cells = 0
        self._in_metrics = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        cls = attrs.get("class") or ""
        if tag == "audio":
            self.audio.append(attrs.get("src"))
        elif tag == "img":
            self.img.append(attrs.get("src"))
        elif tag == "table" and cls == "metrics":
            self.tables.append((attrs.get("data-group"), 0))
            self._in_metrics = True
        elif tag == "td" and cls == "model":
            self.sticky_cells += 1
            if self._in_metrics:
                group, n = self.tables[-1]
                self.tables[-1] = (group, n + 1)
        elif tag == "svg" and cls == "tradeoff":
            self.scatters.append([])
        elif tag == "g" and cls == "point":
            self.scatters[-1].append(attrs.get("data-model"))

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_metrics = False


@pytest.fixture
def served(tmp_path):
    """The report of a fake exp, served on localhost; yields (base url, report dir, requested paths)."""
    fake = make_fake_exp(tmp_path)
    html_dir = tmp_path / "exp" / "report"
    report = write_html_report(fake["results"], str(html_dir), data_dir=fake["data"], num_examples=NUM_EXAMPLES)
    assert report.problems == []
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):  # record instead of printing
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(html_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", html_dir, requested
    finally:
        server.shutdown()
        server.server_close()


def run_chromium(binary: str, profile, *args: str) -> bytes:
    """One headless run; its whole process group is killed on timeout (a hang fails, never stalls)."""
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT} s: {' '.join(cmd)}")
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
    return out


def test_report_in_headless_chromium(chromium, served, tmp_path):
    url, html_dir, requested = served
    dom = run_chromium(chromium, tmp_path / "profile_dom", "--dump-dom", url + "index.html").decode("utf-8")
    page = _Page()
    page.feed(dom)

    n_audio = len(SETS) * NUM_EXAMPLES * ROLES
    assert len(page.audio) == n_audio and len(set(page.audio)) == n_audio
    for src in page.audio:
        assert src and not src.startswith(("/", "http", "file:")), src  # relative: the folder can be zipped
        assert (html_dir / src).is_file()
        assert sf.info(html_dir / src).format == "WAV"
        with urllib.request.urlopen(url + src, timeout=10) as resp:  # served as the browser would fetch it
            assert resp.status == 200
            wav, sr = sf.read(io.BytesIO(resp.read()))
        assert sr == 16000 and wav.size > 0 and np.abs(wav).max() > 0.1

    assert sorted(page.img) == sorted(f"{ts}_{kind}.png" for ts in SETS for kind in ("metrics", "cer", "mels"))
    for src in page.img:  # the browser itself loaded every plot
        assert "/" + src in requested, f"chromium did not request {src}: {requested}"
    assert "hello <b>bold</b> &amp; world" not in dom and "hello &lt;b&gt;bold&lt;/b&gt; &amp; world" in dom
    # per set: the tables of 3 metric groups (3 models each) and 2 scatters with a point per model
    assert page.tables == [("Intelligibility", 3), ("Voice, prosody and quality", 3), ("Cost and coverage", 3)] * 2
    assert len(page.scatters) == 4 and all(sorted(pts) == ["base", "dpo"] for pts in page.scatters)


@pytest.mark.slow
def test_realistic_report_in_headless_chromium(chromium, tmp_path):
    """The page of the committed mini_en results (11 models): rendered DOM and screenshot."""
    if not MINI_EN_RESULTS.is_file():
        pytest.skip(f"{MINI_EN_RESULTS} is not in this checkout")
    fake = make_exp_like(tmp_path / "exp_like", MINI_EN_RESULTS)
    html_dir = tmp_path / "report"
    report = write_html_report(fake["results"], str(html_dir), exp_dir=fake["exp"], data_dir=fake["data"],
                               num_examples=NUM_EXAMPLES)  # fmt: skip
    assert report.problems == []
    url = (html_dir / "index.html").as_uri()
    dom = run_chromium(chromium, tmp_path / "profile_dom", "--dump-dom", url).decode("utf-8")
    page = _Page()
    page.feed(dom)
    models = 11
    groups = ["Intelligibility", "Voice, prosody and quality", "Emotion", "Cost and coverage"]
    assert page.tables == [(g, models) for g in groups] * 2  # test and test_hard; no table scrolls 22 columns
    # CER vs KL: base (KL 0) and the 8 aligned models; SIM vs CER: every model with a SIM (not ground_truth)
    assert [len(p) for p in page.scatters] == [9, 10, 9, 10]
    assert "ground_truth" not in page.scatters[1] and "resynth" in page.scatters[1]
    assert len(page.audio) == 2 * NUM_EXAMPLES * (2 + models - 1)  # prompt, ground truth, every other model
    assert all((html_dir / src).is_file() for src in page.audio)
    assert "training_curves.png" in page.img and "spearman_vs_judge" in dom
    assert dom.count('<details class="problems"') == 0  # nothing missing

    shot = tmp_path / "shot.png"
    run_chromium(chromium, tmp_path / "profile_shot", f"--screenshot={shot}", "--window-size=1400,3000", url)
    import matplotlib.image

    img = matplotlib.image.imread(str(shot))  # (H, W, C) floats in [0, 1]
    assert img.shape[:2] == (3000, 1400)
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std(axis=0).max() > 0.05, "the screenshot is blank"
    assert len(np.unique((rgb * 255).round().astype(np.uint8), axis=0)) > 50, "the screenshot has almost no content"
    if os.environ.get("TTSRL_KEEP_SCREENSHOT"):  # look at it: TTSRL_KEEP_SCREENSHOT=/tmp/report.png pytest ...
        os.replace(shot, os.environ["TTSRL_KEEP_SCREENSHOT"])
