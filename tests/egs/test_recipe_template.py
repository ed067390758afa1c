"""egs/TEMPLATE/rl1: a new recipe made by setup.sh runs stage 1, validates, and skips on a rerun; rl.sh checks
every option before any work; setup.sh's stubs; a base trained elsewhere (--base_exp) through stages 1-3 and 5-8."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttsrl.data.datadir import read_kv

ROOT = Path(__file__).resolve().parents[2]

DATA_SH = """#!/usr/bin/env bash
# Test corpus: toy data dirs, optionally broken.
set -euo pipefail
data_dir=data
fs=16000
db_dir=downloads
broken=false
. utils/parse_options.sh
python3 - "$broken" "$data_dir" <<'PY'
import os, sys
from ttsrl.data.toy import make_toy_data_dir
for i, name in enumerate(["train", "dev", "test"]):
    make_toy_data_dir(f"{sys.argv[2]}/{name}", seed=i)
if sys.argv[1] == "true":
    os.remove(f"{sys.argv[2]}/dev/wav/" + sorted(os.listdir(f"{sys.argv[2]}/dev/wav"))[0])
PY
echo "ran --data_dir $data_dir --fs $fs --db_dir $db_dir" >> calls.txt
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
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env=env, timeout=600)


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


@pytest.mark.parametrize("args, message", [
    (("--stage", "9", "--stop_stage", "2"), "--stage 9 is after --stop_stage 2: nothing would run"),
    (("--stage", "10"), "--stage must be an integer in 1..9, got '10'"),
    (("--stage", "x"), "--stage must be an integer in 1..9, got 'x'"),
    (("--stop-stage", "0"), "--stop_stage must be an integer in 1..9, got '0'"),
    (("--align_set_size", "abc"), "--align_set_size must be an integer >= 0, got 'abc'"),
    (("--nj", "0"), "--nj must be an integer >= 1, got '0'"),
    (("--num_candidates", "2.5"), "--num_candidates must be an integer >= 1, got '2.5'"),
    (("--pair_margin", "-1"), "--pair_margin must be a number >= 0, got '-1'"),
    (("--vocoder", "hifigan"), "--vocoder must be griffin_lim or vocos, got 'hifigan'"),
    (("--flow_student", "cm"), "--flow_student must be none or dmo, got 'cm'"),
    (("--flow_student", "dmo", "--dmo_config", "/no/such.yaml"), "--dmo_config /no/such.yaml: no such file"),
    (("--decode_models", "base base_dmo"), "--decode_models base_dmo: no DMO student"),
    (("--align_methods", "dpo nonsense"), "unknown --align_methods entry 'nonsense'"),
    (("--align_set_size", "0", "--stage", "7"), "stage 7 needs --align_set_size > 0"),
    (("--lm_config", "/no/such.yaml"), "--lm_config /no/such.yaml: no such file"),
    (("--base_exp", "/no/such/base"), "--base_exp /no/such/base: not a directory"),
])
def test_every_option_is_checked_before_any_work(tmp_path, args, message):
    """The bad-input trials of issue 29: each exits non-zero at once, with one message, before stage 1."""
    recipe = make_recipe(tmp_path)
    r = run(recipe, *args)
    assert r.returncode != 0 and message in r.stderr, r.stdout + r.stderr
    assert "Successfully finished" not in r.stdout and "Stage" not in r.stdout
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr  # a message, not a cascade of bash errors
    assert not (recipe / "data").exists() and not (recipe / "calls.txt").exists()


def test_stage1_gives_data_sh_the_data_dir_fs_and_db_dir(tmp_path):
    """--db_dir is an option of the recipe, --local_data_opts adds to (not replaces) what rl.sh gives data.sh."""
    recipe = make_recipe(tmp_path)
    r = run(recipe, "--stop_stage", "1", "--datadir", "d2", "--db_dir", "/corpora/toy",
            "--local_data_opts", "--broken false")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (recipe / "calls.txt").read_text() == "ran --data_dir d2 --fs 16000 --db_dir /corpora/toy\n"
    assert (recipe / "d2" / ".stage1.done").is_file() and not (recipe / "data").exists()


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


def test_help_lists_stages_and_options(tmp_path):
    recipe = make_recipe(tmp_path)
    r = run(recipe, "--help")
    assert r.returncode == 0
    assert "--stop_stage" in r.stdout and "scoring" in r.stdout
    for option in ("--expdir", "--dumpdir", "--datadir", "--vocoder_config", "--cmd_backend", "--db_dir",
                   "--base_exp", "--strict_text", "--flow_student", "--dmo_config", "--speaker_config"):
        assert option in r.stdout, option
    assert "shared/DESIGN.md" not in r.stdout  # not in the repository; the README is


def test_setup_writes_stubs_that_say_what_to_fill_in(tmp_path):
    recipe = tmp_path / "egs" / "new" / "rl1"
    r = subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), str(recipe)], capture_output=True, text=True)
    assert r.returncode == 0 and "fill in local/data.sh" in r.stdout, r.stdout + r.stderr
    run_sh, data_sh = (recipe / "run.sh").read_text(), (recipe / "local" / "data.sh").read_text()
    assert os.access(recipe / "run.sh", os.X_OK) and os.access(recipe / "local" / "data.sh", os.X_OK)
    assert "./rl.sh" in run_sh and '"$@"' in run_sh and "# new:" in run_sh
    for what in ("wav.scp", "text", "utt2spk", "prompt.scp", "prompt_text", "utt2emo", "TODO", "data_dir=",
                 "fs=", "db_dir="):
        assert what in data_sh, what
    for f in (recipe / "run.sh", recipe / "local" / "data.sh"):
        assert subprocess.run(["bash", "-n", str(f)]).returncode == 0
    r = run(recipe, "--stop_stage", "1")  # the stub stops stage 1 with what to do, and nothing is marked done
    assert r.returncode != 0 and "fill in how downloads becomes data/{train,dev,test}" in r.stderr, r.stderr
    assert not (recipe / "data" / ".stage1.done").exists()
    (recipe / "run.sh").write_text("# mine\n")  # a second setup.sh keeps what was written
    subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), str(recipe)], check=True, capture_output=True)
    assert (recipe / "run.sh").read_text() == "# mine\n"
    r = subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Usage" in r.stdout


# ------------------------------------------------------------------ a new corpus and a base trained elsewhere
# The filled-in part of setup.sh's data.sh stub: toy sets (one test text has characters an English model
# cannot spell); the stub's own lines then fix the dirs and give the test set its prompts.
FILLED_IN = """python3 - "${data_dir}" <<'PY'
import sys
from ttsrl.data.datadir import DataDir
from ttsrl.data.toy import make_toy_data_dir
root = sys.argv[1]
for seed, (name, spk) in enumerate([("train", 3), ("dev", 2), ("local/test", 2)]):
    make_toy_data_dir(f"{root}/{name}", num_spk=spk, utts_per_spk=2, seed=seed, duration=0.3)
d = DataDir.load(f"{root}/local/test")
d.text["spk1-utt1"] = "hello 你好 world"
d.write(f"{root}/local/test")
PY
"""


def fill_in_stub(recipe):
    """Replace the stub's two stopping lines and its TODO comment by FILLED_IN, keep the rest as written."""
    path = recipe / "local" / "data.sh"
    lines = path.read_text().splitlines(keepends=True)
    stop = next(i for i, line in enumerate(lines) if "a stub of egs/TEMPLATE" in line)
    todo = next(i for i, line in enumerate(lines) if line.startswith("# TODO"))
    end = next(i for i in range(todo, len(lines)) if not lines[i].startswith("#"))
    del lines[todo:end]
    lines.insert(todo, FILLED_IN)
    del lines[stop:stop + 3]  # echo (two lines) and exit 1
    assert "exit 1\n" not in lines[stop:]
    path.write_text("".join(lines))


def make_base_exp(root, seed=0):
    """A base 'trained elsewhere': random weights in the tiny configs' architectures, in --base_exp's layout
    (the LM with its char units, as stage 4 writes it); the tokenizer's mel config is not the default one."""
    import torch
    import yaml
    from tts_helpers import LETTERS, save

    from ttsrl.feats.mel import MelConfig
    from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
    from ttsrl.models.flow import FlowConfig, FlowMatching
    from ttsrl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig
    from ttsrl.text.tokenizer import write_token_list

    def conf(model):
        return yaml.safe_load((ROOT / "conf" / model / "tiny.yaml").read_text())["model_conf"]

    torch.manual_seed(seed)
    tokens = ["<blank>", "<unk>", "<space>", *LETTERS, "z", "<sos/eos>"]
    for d in ("tokenizer", "lm", "flow"):
        (root / d).mkdir(parents=True)
    write_token_list(root / "tokenizer" / "tokens.txt", tokens)
    write_token_list(root / "lm" / "tokens.txt", tokens)
    (root / "lm" / "token_type").write_text("char\n")
    tconf = conf("tokenizer")
    tconf["fsq_levels"] = tuple(tconf["fsq_levels"])
    tcfg = SpeechTokenizerConfig(vocab_size=len(tokens), mel=MelConfig(win_length=512), **tconf)
    tok = SpeechTokenizer(tcfg)
    save(tok, tcfg, root / "tokenizer" / "model.pt", token_type="char")
    lcfg = CodecLMConfig(text_vocab_size=len(tokens), speech_vocab_size=tok.codebook_size,
                         **{**conf("lm"), "speech_pos_rate": 1.0})
    save(CodecLM(lcfg), lcfg, root / "lm" / "model.pt")
    fcfg = FlowConfig(vocab_size=tok.codebook_size, **conf("flow"))
    save(FlowMatching(fcfg), fcfg, root / "flow" / "model.pt")
    return root


def snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.slow  # about 25 processes that import torch: ~70 s on 2 busy cores
def test_new_corpus_with_a_base_trained_elsewhere(tmp_path):
    """The README's path for a new user: setup.sh, the stub of local/data.sh filled in, a base model from
    elsewhere (--base_exp), stages 1-3 (features with its mel config, tokens with its units), then
    ./run.sh --stage 5 --stop-stage 8: sampling, reward model, DPO and decoding, with nothing trained in
    stages 2 and 4 and nothing written into the base folder."""
    recipe = tmp_path / "egs" / "mycorpus" / "rl1"
    subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), str(recipe)], check=True, capture_output=True)
    fill_in_stub(recipe)
    base = make_base_exp(tmp_path / "cluster" / "base")
    before = snapshot(base)
    common = ("--base_exp", str(base), "--conf_size", "tiny", "--align_config", str(ROOT / "conf/align/tiny.yaml"),
              "--nj", "1", "--align_set_size", "4")
    r = run(recipe, *common, "--stop_stage", "3")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Stage 2: --base_exp: the speech tokenizer is" in r.stdout and "training" not in r.stdout
    assert "win_length: 512" in (recipe / "dump/feats/train/mel_conf.yaml").read_text()
    assert (recipe / "dump/tokens/train/tokens.txt").read_text() == (base / "lm/tokens.txt").read_text()
    assert (recipe / "data/test/prompt.scp").is_file() and (recipe / "dump/tokens/train_align/.done").is_file()

    r = run(recipe, *common, "--stage", "5", "--stop-stage", "8", "--num_candidates", "2",
            "--sample_args", "--top_k 5 --max_len_ratio 2",
            "--decode_args", "--top_k 5 --max_len_ratio 2 --flow_n_steps 2 --griffin_lim_iters 2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Stage 4" not in r.stdout and "Successfully finished" in r.stdout
    for path in ("exp/base/samples/train_align/tokens.scp", "exp/base/samples/dev/pairs/best_worst/pairs.jsonl",
                 "exp/reward/model.pt", "exp/dpo/lm/model.pt"):
        assert (recipe / path).exists(), path
    sample_log = (recipe / "exp/base/samples/dev/log/sample.1.log").read_text().splitlines()[0]
    assert f"--lm {base}/lm/model.pt" in sample_log
    assert f"--init_lm {base}/lm/model.pt" in (recipe / "exp/dpo/lm/log/train.log").read_text().splitlines()[0]
    test_utts = set(read_kv(recipe / "data/test/text"))
    for model in ("resynth", "base", "dpo"):
        ddir = recipe / "exp" / model / "decode" / "test"
        log = (ddir / "log/synthesize.1.log").read_text()
        assert f"--tokenizer_dir {base}/tokenizer" in log and f"--flow {base}/flow/model.pt" in log
        errors = read_kv(ddir / "errors")
        # the text an English model cannot spell fails alone (--strict_text true); the others are synthesized
        assert "spk1-utt1" in errors and "'你好'" in errors["spk1-utt1"], errors
        assert set(read_kv(ddir / "wav.scp")) | set(errors) == test_utts and len(read_kv(ddir / "wav.scp")) >= 1
    assert not (recipe / "exp/base/lm").exists() and not (recipe / "exp/tokenizer/model.pt").exists()
    assert snapshot(base) == before  # the base is read, never written
    # tokens of one base are not used with another one's models
    other = make_base_exp(tmp_path / "cluster" / "other", seed=1)
    r = run(recipe, *common[2:], "--base_exp", str(other), "--stage", "5", "--stop_stage", "5")
    assert r.returncode != 0 and "dump/tokens/train holds the tokens of another speech tokenizer" in r.stderr, r.stderr
