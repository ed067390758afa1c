"""Tiny copies of real corpora, in their real layouts, for the recipe tests of tests/egs/.

Each ``make_*`` function writes a few short tones at the corpus' native rate under ``root``
and returns what the tests check against. Also helpers to run a recipe's local/data.sh and
to read the data dirs it writes.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]


def tone(seconds: float, fs: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(path: Path, seconds: float, fs: int, freq: float = 220.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, fs, freq), fs, subtype="PCM_16")


# ------------------------------------------------------------------------------ corpora


def make_ljspeech(root: Path, n: int = 12, missing_wav: bool = True) -> dict:
    """<root>/LJSpeech-1.1/{metadata.csv,wavs/*.wav} at 22,050 Hz, five clips a chapter; with
    ``missing_wav``, LJ001-0006 is listed in metadata.csv without its wav.
    Returns {"ids", "normalized", "durations"}."""
    corpus = root / "LJSpeech-1.1"
    ids, normalized, durations, lines = [], {}, {}, []
    for i in range(n):
        utt = f"LJ{1 + i // 5:03d}-{1 + i % 5:04d}"
        dur = 0.3 + 0.05 * i
        raw, norm = f"Dr. Smith read {i} lines.", f"Doctor Smith read number {i} lines."
        lines.append(f"{utt}|{raw}|{norm}")
        ids.append(utt)
        normalized[utt] = norm
        durations[utt] = dur
        write_audio(corpus / "wavs" / f"{utt}.wav", dur, 22050, 200 + 20 * i)
    if missing_wav:
        lines.insert(5, "LJ001-0006|A lost clip.|A lost clip.")
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"ids": ids, "normalized": normalized, "durations": durations}


# reader -> (gender, subset, chapter, number of sentences); 200 and 2002 test the sort order
LIBRITTS_SPEAKERS = {
    "19": ("F", "train-clean-100", "198", 3),
    "200": ("M", "train-clean-100", "126784", 2),
    "2002": ("F", "train-clean-100", "139469", 2),
    "14": ("F", "train-clean-360", "208", 2),
    "84": ("F", "dev-clean", "121123", 2),
    "174": ("M", "dev-clean", "50561", 2),
    "1089": ("M", "test-clean", "134686", 3),
    "121": ("F", "test-clean", "121726", 2),
}


def make_libritts_r(root: Path, speaker_file: str | None = "speakers.tsv") -> dict:
    """<root>/LibriTTS_R/<subset>/<reader>/<chapter>/<reader>_<chapter>_<para>_<sent>.wav at
    24 kHz with .normalized.txt/.original.txt beside each wav and the per-chapter .book.tsv and
    .trans.tsv; speaker metadata as ``speakers.tsv`` (from doc.tar.gz), ``SPEAKERS.txt`` or none.
    One train wav has no .normalized.txt. Returns {"normalized": {corpus id: text},
    "no_text": corpus id}."""
    top = root / "LibriTTS_R"
    normalized = {}
    for reader, (_, subset, chapter, n) in LIBRITTS_SPEAKERS.items():
        folder = top / subset / reader / chapter
        trans = []
        for k in range(n):
            cid = f"{reader}_{chapter}_{k:06d}_{k % 2:06d}"
            norm, orig = f"Reader {reader} says sentence {k}.", f"Reader {reader} says sentence #{k}"
            write_audio(folder / f"{cid}.wav", 0.3 + 0.1 * k, 24000, 150 + int(reader) % 300)
            (folder / f"{cid}.normalized.txt").write_text(norm, encoding="utf-8")
            (folder / f"{cid}.original.txt").write_text(orig, encoding="utf-8")
            trans.append(f"{cid}\t{orig}\t{norm}")
            normalized[cid] = norm
        (folder / f"{reader}_{chapter}.trans.tsv").write_text("\n".join(trans) + "\n", encoding="utf-8")
        (folder / f"{reader}_{chapter}.book.tsv").write_text(
            "".join(f"{line}\t{line}\t\t\t20.0\n" for line in trans), encoding="utf-8"
        )
    no_text = "19_198_000002_000000"
    (top / "train-clean-100" / "19" / "198" / f"{no_text}.normalized.txt").unlink()
    del normalized[no_text]
    if speaker_file == "speakers.tsv":
        rows = ["READER\tGENDER\tSUBSET\tNAME"]
        rows += [f"{r}\t{g}\t{s}\tReader {r}" for r, (g, s, _, _) in LIBRITTS_SPEAKERS.items()]
        (top / "speakers.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    elif speaker_file == "SPEAKERS.txt":
        rows = ["; Some pipe(|) separated metadata about all LibriVox readers",
                ";ID  |SEX| SUBSET           |MINUTES| NAME"]
        rows += [f"{r:<5}| {g} | {s:<16} | 25.00 | Reader {r}" for r, (g, s, _, _) in LIBRITTS_SPEAKERS.items()]
        (top / "SPEAKERS.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"normalized": normalized, "no_text": no_text}


# the header line of the real file ends with a space
VCTK_INFO = "ID  AGE  GENDER  ACCENTS  REGION COMMENTS \n" + """p225  23  F    English    Southern  England
p226  22  M    English    Surrey
p227  38  M    English    Cumbria
p228  22  F    English    Southern  England
p280  25  F    Unknown    France  (mic2 files unavailable)
p315  18  M    American    Connecticut  (Text unavailable)
"""


def make_vctk(root: Path) -> dict:
    """<root>/VCTK-Corpus-0.92/{speaker-info.txt, txt/<spk>/<spk>_<nnn>.txt,
    wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic{1,2}.flac} at 48 kHz. Defects as in the real
    corpus: p315 has no text at all, p280 no mic2; p226_004 has text but no audio, p225_005
    audio but no text. Returns {"texts": {utt: text}, "no_text": [...], "no_audio": [...]}."""
    corpus = root / "VCTK-Corpus-0.92"
    corpus.mkdir(parents=True)
    (corpus / "speaker-info.txt").write_text(VCTK_INFO, encoding="utf-8")
    texts, no_text, no_audio = {}, [], []
    for j, spk in enumerate(["p225", "p226", "p227", "p228", "p280", "p315"]):
        for k in range(1, 6 if spk == "p225" else 5):
            utt = f"{spk}_{k:03d}"
            text = f"Please call Stella, speaker {spk} sentence {k}.\n"
            mics = ["mic1"] if spk == "p280" else ["mic1", "mic2"]
            if utt != "p226_004":
                for mic in mics:
                    path = corpus / "wav48_silence_trimmed" / spk / f"{utt}_{mic}.flac"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(str(path), tone(0.25 + 0.05 * k, 48000, 180 + 30 * j), 48000,
                             format="FLAC", subtype="PCM_16")
            else:
                no_audio.append(utt)
            if spk == "p315" or utt == "p225_005":
                no_text.append(utt)
                continue
            (corpus / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (corpus / "txt" / spk / f"{utt}.txt").write_text(text, encoding="utf-8")
            if utt not in no_audio:
                texts[utt] = text.strip()
    return {"texts": texts, "no_text": no_text, "no_audio": no_audio}


# ------------------------------------------------------------------------------ running


def recipe_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{REPO / 'tools' / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["LC_ALL"] = "C"
    return env


def run_data_sh(corpus: str, *args: str | os.PathLike) -> subprocess.CompletedProcess:
    """Runs egs/<corpus>/rl1/local/data.sh from the recipe folder; never raises on failure."""
    return subprocess.run(
        ["local/data.sh", *map(str, args)],
        cwd=REPO / "egs" / corpus / "rl1",
        env=recipe_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def help_exit_codes(corpus: str) -> dict[str, int]:
    """Exit codes of ``--help`` of the recipe's local/data.sh and local/*.py scripts."""
    recipe = REPO / "egs" / corpus / "rl1"
    python = str(REPO / "tools" / "venv" / "bin" / "python")
    codes = {}
    for script in ["data.sh", *sorted(p.name for p in (recipe / "local").glob("*.py"))]:
        cmd = [f"local/{script}"] if script.endswith(".sh") else [python, f"local/{script}"]
        r = subprocess.run([*cmd, "--help"], cwd=recipe, env=recipe_env(), capture_output=True, timeout=60)
        codes[script] = r.returncode
    return codes


def validate(data_dir: Path, fs: int = 16000) -> subprocess.CompletedProcess | None:
    """utils/validate_data_dir.sh on a data dir, or None while that tool does not exist."""
    tool = REPO / "utils" / "validate_data_dir.sh"
    if not tool.exists():
        return None
    return subprocess.run([str(tool), "--sample_rate", str(fs), str(data_dir)], cwd=REPO,
                          env=recipe_env(), capture_output=True, text=True, timeout=120)


def read_kv(path: Path) -> list[tuple[str, str]]:
    """The lines of a Kaldi key-value file as (key, value), in file order."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(" ")
        out.append((key, value))
    return out


def load_wav(spec: str) -> tuple[np.ndarray, int]:
    """Reads a wav.scp entry: a path, or a command ending in '|' run through the shell."""
    if spec.endswith("|"):
        wav = subprocess.run(spec[:-1], shell=True, check=True, capture_output=True, env=recipe_env()).stdout
        data, fs = sf.read(io.BytesIO(wav))
    else:
        data, fs = sf.read(spec)
    return data, fs


def check_data_dir(data_dir: Path, labels: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """Checks what every data dir must satisfy and returns its files as dicts."""
    files = {}
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", *(f"utt2{k}" for k in labels)):
        rows = read_kv(data_dir / name)
        keys = [k for k, _ in rows]
        assert keys == sorted(keys), f"{data_dir / name} is not sorted"
        assert len(set(keys)) == len(keys), f"{data_dir / name} has duplicate keys"
        files[name] = dict(rows)
    utts = list(files["wav.scp"])
    for name in ("text", "utt2spk", *(f"utt2{k}" for k in labels)):
        assert list(files[name]) == utts, f"{data_dir / name} and wav.scp have different ids"
    expected = {}
    for utt, spk in files["utt2spk"].items():
        assert utt.startswith(spk)
        expected.setdefault(spk, []).append(utt)
    assert {s: u.split() for s, u in files["spk2utt"].items()} == expected
    # utt2spk sorted by utterance is also sorted by speaker (Kaldi's rule)
    pairs = list(files["utt2spk"].items())
    assert pairs == sorted(pairs, key=lambda p: (p[1], p[0]))
    return files


def check_prompts(data_dir: Path, files: dict[str, dict[str, str]]) -> None:
    """prompt.scp maps each utterance to another utterance of the same speaker; prompt_text
    holds that utterance's text."""
    prompt_scp = dict(read_kv(data_dir / "prompt.scp"))
    prompt_text = dict(read_kv(data_dir / "prompt_text"))
    assert list(prompt_scp) == list(files["wav.scp"]) == list(prompt_text)
    by_wav = {wav: utt for utt, wav in files["wav.scp"].items()}
    for utt, wav in prompt_scp.items():
        other = by_wav[wav]
        assert other != utt
        assert files["utt2spk"][other] == files["utt2spk"][utt]
        assert prompt_text[utt] == files["text"][other]
