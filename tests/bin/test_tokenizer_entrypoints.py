"""train_tokenizer and tokenize_speech on a toy corpus; every conf/tokenizer/*.yaml builds."""
import json
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from ttsrl.bin import tokenize_speech, train_tokenizer
from ttsrl.data.datadir import read_kv
from ttsrl.data.toy import make_toy_data_dir
from ttsrl.feats.dump import dump_data_dir_feats
from ttsrl.models.speech_tokenizer import SPEECH_TOKENIZERS, SpeechTokenizer, load_ctc_tokenizer
from ttsrl.utils.config import parse_with_config

ROOT = Path(__file__).resolve().parents[2]
CONFS = sorted((ROOT / "conf" / "tokenizer").glob("*.yaml"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i, name in enumerate(["train", "dev", "test"]):
        d = make_toy_data_dir(root / "data" / name, seed=i)
        dump_data_dir_feats(d, root / "dump" / "feats" / name, write_stats=True, progress=False)
    test = root / "data" / "test"
    utts = list(read_kv(test / "text"))
    wav = read_kv(test / "wav.scp")[utts[0]]
    (test / "prompt.scp").write_text("".join(f"{u} {wav}\n" for u in utts))
    (test / "prompt_text").write_text("".join(f"{u} hello world\n" for u in utts))
    return root


def train_args(root, exp, *extra):
    return [
        "--config", str(ROOT / "conf/tokenizer/tiny.yaml"),
        "--train_data_dir", str(root / "data/train"), "--train_feats_dir", str(root / "dump/feats/train"),
        "--valid_data_dir", str(root / "data/dev"), "--valid_feats_dir", str(root / "dump/feats/dev"),
        "--exp_dir", str(exp), "--progress", "false", "--tensorboard", "false", *extra,
    ]


@pytest.fixture(scope="module")
def trained(corpus):
    exp = corpus / "exp" / "tokenizer"
    summary = train_tokenizer.main(train_args(corpus, exp, "--max_steps", "3"))
    assert summary["step"] == 3
    return exp


@pytest.mark.parametrize("module", ["ttsrl.bin.train_tokenizer", "ttsrl.bin.tokenize_speech"])
def test_help_exits_zero(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Usage" in r.stdout


def test_train_writes_a_self_contained_tokenizer_dir(trained):
    for name in ("model.pt", "config.yaml", "tokens.txt", "stats.npz", "metrics.json", "train.log"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {"ctc_cer_dev", "codebook_perplexity", "codebook_usage"} <= set(metrics)
    assert 0 < metrics["codebook_usage"] <= 1 and metrics["codebook_perplexity"] >= 1
    tok = SpeechTokenizer.from_pretrained(trained)
    assert not tok.training and tok.config.vocab_size == len((trained / "tokens.txt").read_text().split())
    stats = np.load(trained / "stats.npz")
    assert np.allclose(tok.mvn.mean.numpy(), stats["mean"], atol=1e-5)


def test_tokenize_writes_tokens_text_and_prompts(corpus, trained):
    out = corpus / "dump" / "tokens" / "test"
    metrics = tokenize_speech.main([
        "--tokenizer_dir", str(trained), "--data_dir", str(corpus / "data/test"), "--out_dir", str(out),
        "--feats_scp", str(corpus / "dump/feats/test/feats.scp"), "--metrics_json", str(trained / "metrics.json"),
    ])
    speech = kaldiio.load_scp(str(out / "speech.scp"))
    n = read_kv(out / "utt2num_tokens")
    assert sorted(speech) == sorted(n) == sorted(read_kv(corpus / "data/test/text"))
    for utt, toks in speech.items():
        assert toks.dtype == np.int32 and len(toks) == int(n[utt]) == 6  # 0.2 s = 21 frames -> 6 tokens
    ids = read_kv(out / "text")
    assert all(v.replace(" ", "").isdigit() for v in ids.values())
    assert len(kaldiio.load_scp(str(out / "prompt_speech.scp"))) == len(speech)
    assert set(read_kv(out / "prompt_text")) == set(speech)
    assert (out / "tokens.txt").read_text() == (trained / "tokens.txt").read_text()
    # the LM's units are the tokenizer's CTC units: ctc_text is text
    assert (out / "token_type").read_text() == "char\n" and read_kv(out / "ctc_text") == ids
    merged = json.loads((trained / "metrics.json").read_text())
    assert merged["ctc_cer"] == merged["ctc_cer_test"] == metrics["ctc_cer_test"]
    assert "ctc_cer_dev" in merged  # the training's numbers are kept

    # from the audio instead of the dumped features: the same tokens
    out2 = corpus / "dump" / "tokens" / "test_wav"
    tokenize_speech.main(["--tokenizer_dir", str(trained), "--data_dir", str(corpus / "data/test"),
                          "--out_dir", str(out2), "--report_cer", "false"])
    speech2 = kaldiio.load_scp(str(out2 / "speech.scp"))
    assert all(np.array_equal(speech[u], speech2[u]) for u in speech)


def test_bpe_units_give_a_character_error_rate(corpus):
    exp = corpus / "exp" / "tokenizer_bpe"
    train_tokenizer.main(train_args(corpus, exp, "--max_steps", "2", "--token_type", "bpe", "--bpe_vocab_size", "30"))
    assert (exp / "bpe.model").is_file()
    tokens = (exp / "tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and any(t.startswith("\u2581") for t in tokens)
    out = corpus / "dump" / "tokens_bpe" / "dev"
    metrics = tokenize_speech.main(["--tokenizer_dir", str(exp), "--data_dir", str(corpus / "data/dev"),
                                    "--out_dir", str(out), "--feats_scp", str(corpus / "dump/feats/dev/feats.scp")])
    assert (out / "bpe.model").is_file() and 0 <= metrics["ctc_cer_dev"]
    ctc_tok = load_ctc_tokenizer(exp)
    first = read_kv(out / "text")
    utt = sorted(first)[0]
    assert ctc_tok.decode([int(i) for i in first[utt].split()]) == ctc_tok.clean(read_kv(corpus / "data/dev/text")[utt])


def test_phoneme_text_units_keep_characters_in_ctc_text(corpus, trained, tmp_path):
    from ttsrl.bin import tokenize_text
    from ttsrl.text.tokenizer import load_text_tokenizer

    units = tmp_path / "units"  # what stage 3 builds for rl.sh --text_token_type phn
    tokenize_text.main(["--token_type", "phn", "--input", str(corpus / "data/train/text"), "--units_dir", str(units)])
    out = tmp_path / "tokens" / "test"
    metrics = tokenize_speech.main([
        "--tokenizer_dir", str(trained), "--data_dir", str(corpus / "data/test"), "--out_dir", str(out),
        "--feats_scp", str(corpus / "dump/feats/test/feats.scp"), "--text_token_type", "phn",
        "--text_token_list", str(units / "tokens.txt")])
    assert (out / "token_type").read_text() == "phn\n"
    assert (out / "tokens.txt").read_text() == (units / "tokens.txt").read_text()
    phn, ctc = load_text_tokenizer(out), load_ctc_tokenizer(trained)
    texts = read_kv(corpus / "data/test/text")
    ids = {u: [int(i) for i in v.split()] for u, v in read_kv(out / "text").items()}
    ctc_ids = {u: [int(i) for i in v.split()] for u, v in read_kv(out / "ctc_text").items()}
    assert set(ids) == set(ctc_ids) == set(texts)
    for utt, text in texts.items():
        assert ids[utt] == phn.encode(text) and "ˈ" in phn.decode(ids[utt])  # phones with stress
        assert ctc.decode(ctc_ids[utt]) == ctc.clean(text)  # characters, for the reward side
    prompt = [int(i) for i in read_kv(out / "prompt_text")[sorted(texts)[0]].split()]
    assert prompt == phn.encode("hello world")  # the LM reads the prompt's text in its units too
    assert metrics["ctc_cer_test"] >= 0  # the CER is over characters (ctc_text)


def test_text_units_failures_exit_non_zero(corpus, trained, tmp_path, caplog):
    import shutil

    args = ["--tokenizer_dir", str(trained), "--out_dir", str(tmp_path / "out"), "--report_cer", "false"]
    with pytest.raises(SystemExit) as e:  # phn asked without its list: the tokenizer's CTC units are char
        tokenize_speech.main([*args, "--data_dir", str(corpus / "data/test"), "--text_token_type", "phn"])
    assert e.value.code == 1 and any("CTC units of" in r.getMessage() for r in caplog.records)
    data = tmp_path / "data"
    shutil.copytree(corpus / "data/test", data)
    texts = read_kv(data / "text")
    bad = sorted(texts)[1]
    (data / "text").write_text("".join(f"{u} {'tokyo 東京' if u == bad else t}\n" for u, t in sorted(texts.items())))
    units = tmp_path / "units"
    from ttsrl.bin import tokenize_text

    tokenize_text.main(["--token_type", "phn", "--input", str(corpus / "data/train/text"), "--units_dir", str(units)])
    with pytest.raises(SystemExit) as e:  # a character the phonemizer cannot read: named with its utterance
        tokenize_speech.main([*args, "--data_dir", str(data), "--text_token_type", "phn",
                              "--text_token_list", str(units / "tokens.txt")])
    assert e.value.code == 1
    assert any(f"utterance '{bad}': cannot phonemize '東'" in r.getMessage() for r in caplog.records)


def test_rerun_resumes_without_training_again(corpus, trained):
    summary = train_tokenizer.main(train_args(corpus, trained, "--max_steps", "3", "--write_metrics", "false"))
    assert summary["step"] == 3
    assert "resumed from" in (trained / "train.log").read_text()


def test_failures_exit_non_zero(corpus, tmp_path):
    with pytest.raises(SystemExit) as e:
        tokenize_speech.main(["--tokenizer_dir", str(tmp_path / "none"), "--data_dir", str(corpus / "data/test"),
                              "--out_dir", str(tmp_path / "out")])
    assert e.value.code == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_key: 1\n")
    with pytest.raises(SystemExit) as e:
        train_tokenizer.main(train_args(corpus, tmp_path / "exp", "--config", str(bad)))
    assert e.value.code == 2


@pytest.mark.parametrize("conf", CONFS, ids=[c.stem for c in CONFS])
def test_every_config_loads_and_builds(conf, tmp_path):
    args = parse_with_config(train_tokenizer.get_parser(), [
        "--config", str(conf), "--train_data_dir", "d", "--train_feats_dir", "f",
        "--valid_data_dir", "d", "--valid_feats_dir", "f", "--exp_dir", str(tmp_path),
    ])
    model = SPEECH_TOKENIZERS.build(args.model, {**args.model_conf, "vocab_size": 40}).eval()
    out = model(torch.randn(1, 50, 80), torch.tensor([50]), torch.tensor([[3, 4]]), torch.tensor([2]))
    assert out.tokens.shape == (1, 13) and torch.isfinite(out.loss)
    assert 500 <= model.codebook_size <= 10000 and model.config.token_rate == 25.0
    assert args.max_steps > 0 or args.max_epochs > 0


def test_configs_exist():
    assert {c.stem for c in CONFS} >= {"tiny", "small", "base"}
    assert os.path.isfile(ROOT / "conf/tokenizer/small.yaml")


TOY_DATA_SH = """#!/usr/bin/env bash
set -euo pipefail
python3 - <<'PY'
from ttsrl.data.toy import make_toy_data_dir
for i, name in enumerate(["train", "dev", "test"]):
    make_toy_data_dir(f"data/{name}", seed=i)
PY
"""


@pytest.mark.slow
def test_recipe_stages_2_and_3_on_toy_data(tmp_path):
    recipe = tmp_path / "egs" / "toy" / "rl1"
    subprocess.run(["bash", str(ROOT / "egs/TEMPLATE/rl1/setup.sh"), str(recipe)], check=True, capture_output=True)
    (recipe / "local" / "data.sh").write_text(TOY_DATA_SH)
    (recipe / "local" / "data.sh").chmod(0o755)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = ["./rl.sh", "--test_sets", "test", "--nj", "2", "--stop_stage", "3",
           "--tokenizer_config", str(ROOT / "conf/tokenizer/tiny.yaml"), "--tokenizer_args", "--max_steps 2"]
    r = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    for s in ("train", "dev", "test"):
        assert (recipe / "dump/feats" / s / ".done").is_file() and (recipe / "dump/tokens" / s / ".done").is_file()
        assert len(read_kv(recipe / "dump/feats" / s / "feats.scp")) == 6
        assert len(kaldiio.load_scp(str(recipe / "dump/tokens" / s / "speech.scp"))) == 6
    # the alignment texts: a prompted subset of train, tokenized with its prompts
    assert (recipe / "dump/tokens/train_align/prompt_speech.scp").is_file()
    metrics = json.loads((recipe / "exp/tokenizer/metrics.json").read_text())
    assert {"ctc_cer", "ctc_cer_dev", "ctc_cer_test", "codebook_perplexity"} <= set(metrics)
    r = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True, env=env)  # everything is done
    # stage 1, three feature sets, the tokenizer, four token sets (train, dev, test, train_align)
    assert r.returncode == 0 and r.stdout.count("exists; skipping") == 1 + 3 + 1 + 4
    (recipe / "exp/tokenizer/.done").unlink()
    (recipe / "exp/tokenizer/model.pt").unlink()
    r = subprocess.run([*cmd, "--tokenizer_args", "--max_steps 2 --no_such_option 1"], cwd=recipe,
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "train.log" in r.stdout + r.stderr  # a failed job names its log
    assert not (recipe / "exp/tokenizer/.done").exists()
