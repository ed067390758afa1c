"""espeak-ng utterances at 16 kHz for the judge tests (made once per session)."""

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr


def espeak(text, voice="en-us", sr=16000):
    """(wav float32 at ``sr``, sr) of ``text`` spoken by espeak-ng ``voice``."""
    out = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    wav, src = sf.read(io.BytesIO(out), dtype="float32")
    return soxr.resample(wav, src, sr).astype(np.float32), sr


@pytest.fixture(scope="session")
def speech():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (tools/install_system.sh)")
    return {
        "hello": espeak("hello world"),
        "coffee": espeak("i would like a cup of coffee please"),
        "coffee_f": espeak("i would like a cup of coffee please", voice="en-us+f3"),
        "other": espeak("the weather is very nice today"),
    }
