"""egs/TEMPLATE/rl1: a new recipe made by setup.sh runs stage 1, validates, and skips on a rerun."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DATA_SH = """#!/usr/bin/env bash
# Test corpus: toy data dirs, optionally broken.
set -euo pipefail
broken=false
. utils/parse_options.sh
python3 - "$broken" <<'PY'
import os, sys
from ttsrl.data.toy import make_toy_data_dir
for i, name in enumerate(["train", "dev", "test"]):
    make_toy_data_dir(f"data/{name}", seed=i)
if sys.argv[1] == "true":
    os.remove("data/dev/wav/" + sorted(os.listdir("data/dev/wav"))[0])
PY
echo ran >> calls.txt
"""


def make_recipe(tmp_path):
    recipe = tmp_path / "egs" / "toy" / "rl1"
    subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), str(recipe)], check=True, capture_output=True)
    (recipe / "local" / "data.sh").write_text(DATA_SH)
    (recipe / "local" / "data.sh").chmod(0o755)
    (recipe / "run.sh").write_text("#!/usr/bin/env bash\nset -euo pipefail\n./rl.sh --test_sets test \"$@\"\n")
    (recipe / "run.sh").chmod(0o755)
    return recipe


def run(recipe, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)


def test_stage1_runs_validates_and_skips_on_rerun(tmp_path):
    recipe = make_recipe(tmp_path)
    r = run(recipe, "--stage", "1", "--stop-stage", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Stage 1: validating data/dev" in r.stdout
    for s in ("train", "dev", "test"):
        assert (recipe / "data" / s / "spk2utt").is_file()
    assert (recipe / "data" / ".stage1.done").is_file()
    r = run(recipe, "--stage", "1", "--stop_stage", "1")
    assert r.returncode == 0
    assert "skipping" in r.stdout
    assert (recipe / "calls.txt").read_text().count("ran") == 1  # no work done twice


def test_stage1_fails_on_invalid_data_without_marker(tmp_path):
    recipe = make_recipe(tmp_path)
    r = run(recipe, "--stop_stage", "1", "--local_data_opts", "--broken true")
    assert r.returncode != 0
    assert "data/dev" in r.stdout + r.stderr
    assert not (recipe / "data" / ".stage1.done").exists()


def test_unknown_option_and_stray_argument_fail(tmp_path):
    recipe = make_recipe(tmp_path)
    assert run(recipe, "--no_such_option", "1").returncode != 0
    r = run(recipe, "stray")
    assert r.returncode != 0 and "unexpected arguments" in r.stderr
    for bad in ("0", "dpo:x", "diffro:2"):  # --online_iters takes K or METHOD:K of an online method
        r = run(recipe, "--online_iters", f"2 {bad}")
        assert r.returncode != 0 and f"'{bad}' is neither K nor METHOD:K" in r.stderr, r.stderr
    r = run(recipe, "--stop_stage", "1", "--conf_size", "huge")  # the sizes of conf/<model>/ are listed
    assert r.returncode != 0 and "--conf_size huge: no " in r.stderr and "demo small" in r.stderr, r.stderr
    r = run(recipe, "--stop_stage", "1", "--text_token_type", "word")
    assert r.returncode != 0 and "--text_token_type must be char, phn or bpe, got 'word'" in r.stderr, r.stderr
    r = run(recipe, "--stop_stage", "1", "--text_token_type", "bpe", "--bpe_vocab_size", "many")
    assert r.returncode != 0 and "--bpe_vocab_size must be a positive number, got 'many'" in r.stderr, r.stderr
    assert not (recipe / "data").exists()  # checked before any stage runs


def test_stage3_phoneme_units_and_no_reuse_of_other_units(tmp_path, tiny_tts_models):
    """Stage 3 with --text_token_type phn: the unit list from the training text, phn token dirs with the
    characters in ctc_text; a rerun asking for other units fails before any work."""
    import shutil

    from ttsrl.data.datadir import read_kv
    from ttsrl.feats.dump import dump_data_dir_feats
    from ttsrl.models.speech_tokenizer import load_ctc_tokenizer
    from ttsrl.text.tokenizer import load_text_tokenizer

    recipe = make_recipe(tmp_path)
    assert run(recipe, "--stop_stage", "1").returncode == 0
    sets = ("train", "dev", "test")
    for s in sets:  # stage 2's outputs: features and a (random, tiny) speech tokenizer
        dump_data_dir_feats(recipe / "data" / s, recipe / "dump" / "feats" / s, progress=False)
    shutil.copytree(tiny_tts_models / "tokenizer", recipe / "exp" / "tokenizer")
    args = ("--stage", "3", "--stop_stage", "3", "--align_set_size", "0", "--nj", "1")
    r = run(recipe, *args, "--text_token_type", "phn")
    assert r.returncode == 0, r.stdout + r.stderr
    units = recipe / "dump" / "tokens" / "text_units"
    assert (units / "token_type").read_text() == "phn\n" and (units / ".done").is_file()
    phn, ctc = load_text_tokenizer(units), load_ctc_tokenizer(recipe / "exp" / "tokenizer")
    for s in sets:
        tok = recipe / "dump" / "tokens" / s
        texts = read_kv(recipe / "data" / s / "text")
        assert (tok / "token_type").read_text() == "phn\n" and (tok / "tokens.txt").read_text() == (
            units / "tokens.txt").read_text()
        for u, ids in read_kv(tok / "text").items():
            assert [int(i) for i in ids.split()] == phn.encode(texts[u])
        for u, ids in read_kv(tok / "ctc_text").items():
            assert ctc.decode([int(i) for i in ids.split()]) == ctc.clean(texts[u])
    for other in ("char", "bpe"):  # token dirs of other units are not reused
        r = run(recipe, *args, "--text_token_type", other)
        assert r.returncode != 0 and f"holds phn text units, not --text_token_type {other}" in r.stderr, r.stderr
        assert "remove it" in r.stderr and "Stage 3: speech and text tokens" not in r.stdout
    assert not (units / "bpe.model").exists()


def test_help_lists_stages(tmp_path):
    recipe = make_recipe(tmp_path)
    r = run(recipe, "--help")
    assert r.returncode == 0
    assert "--stop_stage" in r.stdout and "scoring" in r.stdout
