#!/usr/bin/env python3
"""Speakers, emotion styles and quality degradations of the mini_en corpus.

Speakers
    16 espeak-ng voices (8 male, 8 female): an accent (``en-us``, ``en`` = British,
    ``en-gb-scotland``, ``en-029`` = Caribbean, ``en-gb-x-rp``, ``en-us-nyc``,
    ``en-gb-x-gbclan`` = Lancaster, ``en-gb-x-gbcwmd`` = West Midlands), a variant
    (``+m1``, ``+f3``, ... which sets formants, pitch register and voice quality; the
    gender label follows the variant) and a base pitch (``-p``, 0-99) and speed
    (``-s``, words per minute). espeak-ng's own MBROLA voices are not used.
    Note: espeak-ng 1.51 ignores a variant after ``en-gb`` (``en-gb+f3`` sounds like
    ``en-gb``), so British English is spelled ``en``.

Age group (``utt2age``), derived from the speaker's settings, in this order:
    * ``child``:  base pitch >= 80 and speed >= 180 wpm (a high, quick voice);
    * ``senior``: speed <= 145 wpm, or a variant with vocal tremor (``grandma``/``grandpa``);
    * ``young``:  base pitch >= 60;
    * ``adult``:  everything else.

Emotion styles (``utt2emo``), made from prosody around the speaker's own settings:
    ============  ======  =====  =========  ============  ============
    style         pitch   speed  amplitude  pitch range   spectral tilt
    ============  ======  =====  =========  ============  ============
    ``neutral``   +0      x1.00  100        medium        0 dB
    ``happy``     +24     x1.15  120        x-high        +3 dB
    ``sad``       -16     x0.75  55         x-low         -7 dB
    ``angry``     +10     x1.22  150        low           +8 dB
    ============  ======  =====  =========  ============  ============
    Pitch and speed are espeak-ng ``-p``/``-s`` offsets, amplitude is ``-a``, the pitch
    range is SSML ``<prosody range=...>`` and the tilt is a high shelf above 1.5 kHz
    applied after synthesis (tense, bright voice for anger; dark, lax voice for sadness).
    So happy = high, wide, lively; sad = low, flat, slow, soft, dark; angry = loud, fast,
    bright, clipped intonation; neutral sits in the middle of every dimension.

Quality (``utt2quality``, a 1-5 MOS-like score; ``utt2degrade``, its name):
    ``clean`` 5; ``noise_snr20``/``pink_snr20``/``lowpass4k`` 4; ``noise_snr10``/``pink_snr10`` 3;
    ``noise_snr5``/``pink_snr5``/``clip`` 2; ``clip_noise_snr5`` 1. ``noise`` is white noise,
    ``pink`` 1/f noise, at the given SNR over the whole utterance; ``clip`` hard-clips the
    loudest 8% of samples; ``lowpass4k`` is an 8th-order Butterworth low-pass at 4 kHz.

Usage::

    python local/speakers.py            # print the speaker table with gender and age
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Speaker:
    spk: str  # speaker id, prefix of its utterance ids
    voice: str  # espeak-ng language voice
    variant: str  # espeak-ng variant (voices/!v/<variant>)
    gender: str  # m / f
    pitch: int  # espeak-ng -p, 0-99
    speed: int  # espeak-ng -s, words per minute

    @property
    def espeak_voice(self) -> str:
        return f"{self.voice}+{self.variant}"

    @property
    def age(self) -> str:
        return age_group(self.pitch, self.speed, self.variant)


TREMOR_VARIANTS = ("grandma", "grandpa")


def age_group(pitch: int, speed: int, variant: str) -> str:
    """The age label of a voice setting (the rule in the module docstring)."""
    if pitch >= 80 and speed >= 180:
        return "child"
    if speed <= 145 or variant in TREMOR_VARIANTS:
        return "senior"
    if pitch >= 60:
        return "young"
    return "adult"


SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk01", "en-us", "m1", "m", 45, 165),
    Speaker("spk02", "en-us", "f3", "f", 55, 170),
    Speaker("spk03", "en", "m3", "m", 50, 160),
    Speaker("spk04", "en", "f2", "f", 65, 175),
    Speaker("spk05", "en-gb-scotland", "m7", "m", 40, 155),
    Speaker("spk06", "en-gb-scotland", "f4", "f", 62, 178),
    Speaker("spk07", "en-029", "m3", "m", 66, 176),
    Speaker("spk08", "en-029", "f3", "f", 48, 160),
    Speaker("spk09", "en-gb-x-rp", "m1", "m", 30, 138),
    Speaker("spk10", "en-gb-x-rp", "grandma", "f", 45, 150),
    Speaker("spk11", "en-us-nyc", "m4", "m", 68, 178),
    Speaker("spk12", "en-us-nyc", "f1", "f", 52, 165),
    Speaker("spk13", "en-gb-x-gbclan", "m6", "m", 80, 190),
    Speaker("spk14", "en-gb-x-gbclan", "f2", "f", 82, 185),
    Speaker("spk15", "en-gb-x-gbcwmd", "m2", "m", 28, 135),
    Speaker("spk16", "en-gb-x-gbcwmd", "f4", "f", 40, 140),
)


@dataclass(frozen=True)
class Emotion:
    name: str
    pitch_offset: int  # added to the speaker's -p (then clipped to 0..99)
    speed_factor: float  # multiplies the speaker's -s
    amplitude: int  # espeak-ng -a
    pitch_range: str  # SSML <prosody range=...>
    tilt_db: float  # high-shelf gain above ~1.5 kHz, applied after synthesis


EMOTIONS: dict[str, Emotion] = {
    "neutral": Emotion("neutral", 0, 1.00, 100, "medium", 0.0),
    "happy": Emotion("happy", 24, 1.15, 120, "x-high", 3.0),
    "sad": Emotion("sad", -16, 0.75, 55, "x-low", -7.0),
    "angry": Emotion("angry", 10, 1.22, 150, "low", 8.0),
}


@dataclass(frozen=True)
class Degradation:
    name: str
    quality: int  # 1 (bad) .. 5 (clean)
    weight: float  # relative frequency among the degraded utterances


DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for d in (
        Degradation("clean", 5, 0.0),
        Degradation("noise_snr20", 4, 1.0),
        Degradation("pink_snr20", 4, 1.0),
        Degradation("lowpass4k", 4, 1.5),
        Degradation("noise_snr10", 3, 1.0),
        Degradation("pink_snr10", 3, 1.0),
        Degradation("noise_snr5", 2, 1.0),
        Degradation("pink_snr5", 2, 1.0),
        Degradation("clip", 2, 1.5),
        Degradation("clip_noise_snr5", 1, 1.0),
    )
}


def espeak_data_dir(espeak: str = "espeak-ng") -> str:
    """espeak-ng's data folder, from ``espeak-ng --version`` ("... Data at: <dir>")."""
    out = subprocess.run([espeak, "--version"], capture_output=True, text=True, check=True).stdout
    if "Data at:" not in out:
        raise RuntimeError(f"cannot find the data folder in '{espeak} --version': {out.strip()}")
    return out.split("Data at:", 1)[1].strip()


def check_espeak(speakers=SPEAKERS, espeak: str = "espeak-ng") -> None:
    """Fail with a clear message if espeak-ng or one of the speakers' variants is missing
    (espeak-ng silently ignores an unknown variant, which would merge two speakers)."""
    if shutil.which(espeak) is None:
        raise RuntimeError(
            f"{espeak} is not installed; it synthesizes the mini_en corpus. "
            "Install it with 'cd tools && make' (or 'apt-get install espeak-ng')."
        )
    data = espeak_data_dir(espeak)
    for s in speakers:
        if not os.path.isfile(os.path.join(data, "voices", "!v", s.variant)):
            raise RuntimeError(f"espeak-ng variant '{s.variant}' of {s.spk} not found in {data}/voices/!v")
        r = subprocess.run([espeak, "-q", "-v", s.espeak_voice, "x"], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            raise RuntimeError(f"espeak-ng voice '{s.espeak_voice}' of {s.spk} failed: {r.stderr.strip()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Print the mini_en speakers with their gender and age group."
    )
    parser.parse_args(argv)
    print("spk    voice+variant            gender pitch speed age")
    for s in SPEAKERS:
        print(f"{s.spk}  {s.espeak_voice:24s} {s.gender:6s} {s.pitch:5d} {s.speed:5d} {s.age}")


if __name__ == "__main__":
    main()
