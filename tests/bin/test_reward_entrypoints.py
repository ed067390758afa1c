"""train_reward, score_candidates and make_pairs on a toy token dir + label data dir: train, score, pair."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ttsrl.bin import eval_reward, make_pairs, score_candidates, train_reward
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError, write_kv
from ttsrl.models.reward import load_reward_model
from ttsrl.text.tokenizer import write_token_list

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "conf" / "reward" / "tiny.yaml")
EMOS = ("neutral", "happy", "sad", "angry")
METRIC_KEYS = {"ctc_cer", "emo_acc", "gender_acc", "age_acc", "quality_corr", "text_logprob", "text_rank_acc",
               "dev_utts", "num_params", "train_seconds"}


def make_set(root, name, n, seed):
    """A token dir (text ids, speech tokens that follow the text) and a data dir with labels."""
    rng = np.random.default_rng(seed)
    tok_dir, data_dir = root / "tokens" / name, root / "data" / name
    tok_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    utts = [f"spk{i % 3}-u{i:03d}" for i in range(n)]
    text = {u: [int(x) for x in rng.integers(2, 9, rng.integers(3, 7))] for u in utts}
    # each text id t becomes three codes; the emotion shifts them, so it is audible in the tokens
    emo = {u: EMOS[i % 4] for i, u in enumerate(utts)}
    speech = {u: np.array([t + 10 * EMOS.index(emo[u]) for t in text[u] for _ in range(3)], dtype=np.int32)
              for u in utts}
    write_kv(tok_dir / "text", {u: " ".join(map(str, t)) for u, t in text.items()})
    write_ark_scp(tok_dir / "speech.ark", tok_dir / "speech.scp", sorted(speech.items()))
    write_kv(data_dir / "utt2spk", {u: u.split("-")[0] for u in utts})
    write_kv(data_dir / "utt2emo", emo)
    write_kv(data_dir / "utt2gender", {u: "mf"[int(u[3]) % 2] for u in utts})
    write_kv(data_dir / "utt2age", {u: ("adult", "child", "senior")[int(u[3])] for u in utts})
    write_kv(data_dir / "utt2quality", {u: str(1 + i % 5) for i, u in enumerate(utts)})
    return tok_dir, data_dir, text, speech


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("reward")
    train_tok, train_data, _, _ = make_set(root, "train", 24, 0)
    dev_tok, dev_data, text, speech = make_set(root, "dev", 8, 1)
    tokens = root / "tokens.txt"
    write_token_list(tokens, ["<blank>", "<unk>", "a", "b", "c", "d", "e", "f", "g", "<sos/eos>"])
    exp = root / "exp"
    summary = train_reward.main([
        "--config", TINY, "--init_ctc_from_tokenizer", "false", "--model_conf", "code_dim=0",
        "--train_dir", str(train_tok), "--train_data_dir", str(train_data),
        "--valid_dir", str(dev_tok), "--valid_data_dir", str(dev_data), "--token_list", str(tokens),
        "--speech_vocab_size", "40", "--exp_dir", str(exp), "--max_steps", "12", "--max_epochs", "0",
        "--max_tokens", "200", "--valid_interval", "6", "--progress", "false", "--tensorboard", "false"])
    return {"root": root, "exp": exp, "summary": summary, "dev_tok": dev_tok, "dev_data": dev_data,
            "text": text, "speech": speech}


def test_train_writes_model_and_metrics(trained):
    exp = trained["exp"]
    metrics = json.loads((exp / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["dev_utts"] == 8 and metrics["ctc_cer"] >= 0
    for k in ("emo_acc", "gender_acc", "age_acc", "text_rank_acc"):
        assert 0.0 <= metrics[k] <= 1.0
    assert -1.0 <= metrics["quality_corr"] <= 1.0 and metrics["text_logprob"] < 0
    assert trained["summary"]["step"] == 12
    rm = load_reward_model(exp)  # the directory; rebuilt from the saved config
    assert not rm.training
    assert rm.config.label_names == {"emotion": sorted(EMOS), "gender": ["f", "m"], "age": ["adult", "child", "senior"]}
    assert rm.config.quality_mean == pytest.approx(np.mean([1 + i % 5 for i in range(24)]))
    assert rm.config.text_vocab_size == 10 and rm.config.speech_vocab_size == 40
    # the interface the alignment code uses
    soft = torch.nn.functional.one_hot(torch.tensor([[2, 3, 4, 5, 6, 7]]), 40).float().requires_grad_(True)
    lp = rm.text_logprob(soft, torch.tensor([6]), torch.tensor([[2, 3]]), torch.tensor([2]))
    lp.sum().backward()
    assert soft.grad.abs().sum() > 0 and rm(soft, torch.tensor([6])).emo_logits.shape == (1, 4)


def test_score_candidates_and_make_pairs(trained):
    root, dev_tok, text, speech = trained["root"], trained["dev_tok"], trained["text"], trained["speech"]
    samples = root / "samples"
    samples.mkdir()
    rng = np.random.default_rng(3)
    cands = {}
    for u in sorted(text):
        cands[f"{u}-c0"] = speech[u]  # the golden tokens ...
        cands[f"{u}-c1"] = rng.integers(0, 40, len(speech[u])).astype(np.int32)  # ... and noise
        cands[f"{u}-c2"] = speech[u][:1]  # 2 CTC frames: too short for its text (3+ ids)
    write_ark_scp(samples / "tokens.ark", samples / "tokens.scp", sorted(cands.items()))
    summary = score_candidates.main(["--reward_model", str(trained["exp"]), "--samples_dir", str(samples),
                                     "--token_dir", str(dev_tok), "--weights", "{text: 1.0, emotion: 0.5}",
                                     "--target_data_dir", str(trained["dev_data"]), "--batch_size", "5"])
    lines = (samples / "rewards.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["key", "text", "emotion", "gender", "age", "quality", "reward"]
    assert len(lines) == 1 + len(cands) and summary["candidates"] == len(cands)
    rows = {x.split("\t")[0]: [float(v) for v in x.split("\t")[1:]] for x in lines[1:]}
    for u in text:  # too short: the infeasible floor per text token
        assert rows[f"{u}-c2"][0] == pytest.approx(-20.0)
        assert rows[f"{u}-c0"][-1] == pytest.approx(rows[f"{u}-c0"][0] + 0.5 * rows[f"{u}-c0"][1], abs=1e-4)
    out = root / "pairs"
    s = make_pairs.main(["--samples_dir", str(samples), "--out_dir", str(out), "--margin", "0.01"])
    pairs = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == s["pairs"] > 0 and s["pairs"] + s["dropped_margin"] + s["dropped_tie"] == 8
    assert all(p["chosen_reward"] - p["rejected_reward"] >= 0.01 for p in pairs)
    assert all(p["rejected_key"].endswith("-c2") for p in pairs)  # the infeasible candidate is the worst
    assert (out / "rewards_hist.png").is_file() and (out / "pairs_summary.json").is_file()
    s = make_pairs.main(["--samples_dir", str(samples), "--out_dir", str(root / "golden"), "--mode", "golden",
                         "--token_dir", str(dev_tok)])
    assert s["pairs"] == 8 and s["mode"] == "golden"
    s = make_pairs.main(["--samples_dir", str(samples), "--out_dir", str(root / "best"), "--mode", "best"])
    assert s["pairs"] == 8


def test_score_candidates_fails_on_unknown_utterance(trained, tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    write_ark_scp(samples / "tokens.ark", samples / "tokens.scp", [("nobody-c0", np.array([1, 2], dtype=np.int32))])
    with pytest.raises(DataDirError, match="utterance nobody is not in .*text"):
        score_candidates.main(["--reward_model", str(trained["exp"]), "--samples_dir", str(samples),
                               "--token_dir", str(trained["dev_tok"])])
    with pytest.raises(SystemExit, match="no targets"):
        score_candidates.main(["--reward_model", str(trained["exp"]), "--samples_dir", str(samples),
                               "--token_dir", str(trained["dev_tok"]), "--weights", "{emotion: 1.0}"])


@pytest.mark.parametrize("module", [train_reward, score_candidates, make_pairs, eval_reward])
def test_help(module, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0 and "--" in capsys.readouterr().out


def test_train_with_the_tokenizer_code_vectors(tiny_tts_models, tmp_path):
    from ttsrl.models.speech_tokenizer import SpeechTokenizer

    train_tok, train_data, _, speech = make_set(tmp_path, "train", 12, 0)
    # the tiny tokenizer has 16 codes: fold the toy ids into them
    write_ark_scp(train_tok / "speech.ark", train_tok / "speech.scp", sorted((u, s % 16) for u, s in speech.items()))
    tokens = tmp_path / "tokens.txt"
    write_token_list(tokens, ["<blank>", "<unk>", "a", "b", "c", "d", "e", "f", "g", "<sos/eos>"])
    common = ["--config", TINY, "--init_ctc_from_tokenizer", "false", "--train_dir", str(train_tok),
              "--train_data_dir", str(train_data), "--valid_dir", str(train_tok), "--valid_data_dir", str(train_data),
              "--token_list", str(tokens), "--max_steps", "2", "--max_epochs", "0", "--max_tokens", "200",
              "--progress", "false", "--tensorboard", "false"]
    with pytest.raises(ValueError, match="give --tokenizer_dir"):
        train_reward.main([*common, "--speech_vocab_size", "16", "--exp_dir", str(tmp_path / "a")])
    with pytest.raises(ValueError, match="has 16 codes"):
        train_reward.main([*common, "--speech_vocab_size", "40", "--exp_dir", str(tmp_path / "b"),
                           "--tokenizer_dir", str(tiny_tts_models / "tokenizer")])
    train_reward.main([*common, "--speech_vocab_size", "16", "--exp_dir", str(tmp_path / "c"),
                       "--tokenizer_dir", str(tiny_tts_models / "tokenizer")])
    rm = load_reward_model(tmp_path / "c")
    tok = SpeechTokenizer.from_pretrained(tiny_tts_models / "tokenizer")
    assert rm.config.code_dim == 2 and rm.emb is None
    torch.testing.assert_close(rm.code_table, tok.embed_tokens(torch.arange(16)))


def test_text_path_from_the_tokenizer_and_eval_on_a_test_set(tiny_tts_models, tmp_path):
    tok_dir = tiny_tts_models / "tokenizer"
    train_tok, train_data, _, speech = make_set(tmp_path, "train", 12, 0)
    test_tok, test_data, _, test_speech = make_set(tmp_path, "test", 6, 1)
    for d, sp in ((train_tok, speech), (test_tok, test_speech)):  # the tiny tokenizer has 16 codes
        write_ark_scp(d / "speech.ark", d / "speech.scp", sorted((u, s % 16) for u, s in sp.items()))
        (d / "tokens.txt").write_text((tok_dir / "tokens.txt").read_text())  # the tokenizer's CTC units
    conf = tmp_path / "reward.yaml"  # the tiny tokenizer's CTC head: d 16, 2 heads, ff 32, 1 conformer layer
    conf.write_text("model_conf: {d_model: 16, n_heads: 2, d_ff: 32, n_layers: 1, conv_kernel: 3, cls_layers: 1,\n"
                    "             code_dim: auto, dropout: 0.0}\ninit_ctc_from_tokenizer: true\n"
                    "max_tokens: 200\nmax_steps: 2\nmax_epochs: 0\nlr: 1.0e-3\n")
    common = ["--config", str(conf), "--train_dir", str(train_tok), "--train_data_dir", str(train_data),
              "--valid_dir", str(train_tok), "--valid_data_dir", str(train_data), "--speech_vocab_size", "16",
              "--tokenizer_dir", str(tok_dir), "--progress", "false", "--tensorboard", "false"]
    with pytest.raises(ValueError, match="n_layers=2"):
        train_reward.main([*common, "--exp_dir", str(tmp_path / "bad"), "--model_conf", "n_layers=2"])
    exp = tmp_path / "exp"
    train_reward.main([*common, "--exp_dir", str(exp)])
    rm = load_reward_model(exp)
    assert rm.config.cls_layers == 1 and rm.config.code_dim == 2
    metrics_json = exp / "metrics.json"
    got = eval_reward.main(["--reward", str(exp), "--token_dir", str(test_tok), "--data_dir", str(test_data),
                            "--metrics_json", str(metrics_json)])
    merged = json.loads(metrics_json.read_text())
    assert merged["utts_test"] == 6 and merged["metrics_set"] == "test" and "dev_utts" in merged
    for k in ("ctc_cer", "emo_acc", "gender_acc", "age_acc"):
        assert merged[k] == merged[f"{k}_test"] == got[k]
    assert 0.0 <= merged["emo_acc"] <= 1.0 and merged["ctc_cer"] >= 0


def as_phoneme_token_dir(tok_dir, tokenizer_dir):
    """The layout of stage 3 with --text_token_type phn: ``text`` in the LM's units (ids past the tokenizer's
    CTC list), ``tokens.txt``/``token_type`` of those units, the characters in ``ctc_text``."""
    from ttsrl.data.datadir import read_kv

    (tok_dir / "text").rename(tok_dir / "ctc_text")
    ctc = read_kv(tok_dir / "ctc_text")
    write_kv(tok_dir / "text", {u: " ".join(str(40 + int(i)) for i in v.split()) for u, v in ctc.items()})
    write_token_list(tok_dir / "tokens.txt", ["<blank>", "<unk>", *(f"p{i}" for i in range(2, 50)), "<sos/eos>"])
    (tok_dir / "token_type").write_text("phn\n")


def test_reward_on_phoneme_token_dirs_reads_ctc_text(tiny_tts_models, tmp_path):
    from ttsrl.tasks.reward import RewardDataset

    tok_dir = tiny_tts_models / "tokenizer"
    train_tok, train_data, text, speech = make_set(tmp_path, "train", 12, 0)
    test_tok, test_data, _, test_speech = make_set(tmp_path, "test", 6, 1)
    for d, sp in ((train_tok, speech), (test_tok, test_speech)):
        write_ark_scp(d / "speech.ark", d / "speech.scp", sorted((u, s % 16) for u, s in sp.items()))
        as_phoneme_token_dir(d, tok_dir)
    assert RewardDataset(str(train_tok), str(train_data), {}).tokens.text == text  # the CTC units
    conf = tmp_path / "reward.yaml"  # its text path starts from the tiny tokenizer's CTC head
    conf.write_text("model_conf: {d_model: 16, n_heads: 2, d_ff: 32, n_layers: 1, conv_kernel: 3, cls_layers: 1,\n"
                    "             code_dim: auto, dropout: 0.0}\ninit_ctc_from_tokenizer: true\n"
                    "max_tokens: 200\nmax_steps: 2\nmax_epochs: 0\nlr: 1.0e-3\n")
    exp = tmp_path / "exp"
    train_reward.main(["--config", str(conf), "--train_dir", str(train_tok), "--train_data_dir", str(train_data),
                       "--valid_dir", str(test_tok), "--valid_data_dir", str(test_data), "--speech_vocab_size", "16",
                       "--tokenizer_dir", str(tok_dir), "--exp_dir", str(exp), "--progress", "false",
                       "--tensorboard", "false"])
    # the text vocabulary is the tokenizer's CTC list, not the token dir's (51 phones), and it is kept with the model
    ctc_list = (tok_dir / "tokens.txt").read_text()
    assert load_reward_model(exp).config.text_vocab_size == len(ctc_list.split()) == 29
    assert (exp / "tokens.txt").read_text() == ctc_list
    got = eval_reward.main(["--reward", str(exp), "--token_dir", str(test_tok), "--data_dir", str(test_data)])
    assert got["utts_test"] == 6 and got["ctc_cer"] >= 0
    (exp / "tokens.txt").unlink()  # a reward dir of before: the token dir's list is no CTC list
    with pytest.raises(SystemExit):
        eval_reward.main(["--reward", str(exp), "--token_dir", str(test_tok), "--data_dir", str(test_data)])
    got = eval_reward.main(["--reward", str(exp), "--token_dir", str(test_tok), "--data_dir", str(test_data),
                            "--token_list", str(tok_dir / "tokens.txt")])
    assert got["utts_test"] == 6
