"""The HTML report in a real browser: headless Chromium loads exp/report/index.html over HTTP.

Chromium comes from tools/install_system.sh (Debian package ``chromium``). Without it the test
is skipped locally and fails under CI (the ``CI`` environment variable set), so CI cannot pass
without ever running it. Each Chromium run is killed after CHROMIUM_TIMEOUT seconds.
"""

import functools
import http.server
import io
import os
import signal
import subprocess
import threading
import urllib.request
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile as sf
from report_fixtures import SETS, make_fake_exp

from ttsrl.score.report import write_html_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_TIMEOUT = 60
NUM_EXAMPLES = 2
ROLES = 4  # prompt, ground truth, base, dpo


@pytest.fixture(scope="module")
def chromium():
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: run tools/install_system.sh (Debian package chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (bash tools/install_system.sh installs Debian's chromium)")
    return CHROMIUM


class _Page(HTMLParser):
    """The src of every <audio> and <img> of a DOM dump."""

    def __init__(self):
        super().__init__()
        self.audio: list[str] = []
        self.img: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "audio":
            self.audio.append(attrs.get("src"))
        elif tag == "img":
            self.img.append(attrs.get("src"))


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

    shot = tmp_path / "shot.png"
    run_chromium(chromium, tmp_path / "profile_shot", f"--screenshot={shot}", "--window-size=1280,2000",
                 url + "index.html")  # fmt: skip
    import matplotlib.image

    img = matplotlib.image.imread(str(shot))  # (H, W, C) floats in [0, 1]
    assert img.shape[:2] == (2000, 1280)
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std(axis=0).max() > 0.05, "the screenshot is blank"
    assert len(np.unique((rgb * 255).round().astype(np.uint8), axis=0)) > 50, "the screenshot has almost no content"
    if os.environ.get("TTSRL_KEEP_SCREENSHOT"):  # look at it: TTSRL_KEEP_SCREENSHOT=/tmp/report.png pytest ...
        os.replace(shot, os.environ["TTSRL_KEEP_SCREENSHOT"])
