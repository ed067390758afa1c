"""The best-of-N headroom: its arithmetic by hand, and ttsrl.bin.headroom on tiny random models."""
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from ttsrl.align.pairs import read_rewards
from ttsrl.bin import headroom
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import write_kv
from ttsrl.models.reward import MultiTaskReward, MultiTaskRewardConfig
from ttsrl.models.speech_tokenizer import SpeechTokenizer, load_ctc_tokenizer
from ttsrl.score import headroom as hr
from ttsrl.score.results import load_results


def test_headroom_arithmetic_by_hand():
    assert hr.headroom_captured(47.5, 42.4, 32.4) == pytest.approx(5.1 / 15.1)  # the DPO: a third
    assert hr.headroom_captured(40.0, 40.0, 40.0) is None  # the best of N is no better: undefined
    rewards = {"a-c0": 1.0, "a-c1": 3.0, "a-c2": 3.0, "b-c0": -1.0, "b-c1": -2.0}
    cers = {"a-c0": 10.0, "a-c1": 50.0, "a-c2": 0.0, "b-c0": 30.0, "b-c1": 20.0, "c-c0": 5.0}
    assert hr.best_of_n_cer(rewards, cers) == {"a": 50.0, "b": 30.0}  # a tie goes to the lower k; c has no reward
    table = hr.headroom_table({"a-c0": 60.0, "a-c1": 20.0}, {"token": {"a": 20.0}}, {"m": {"a-c0": 30.0}},
                              {"m": "token"})
    assert table["cer_base"] == 40.0 and table["models"]["m"]["headroom_captured"] == pytest.approx(0.5)


def test_headroom_entrypoint(tiny_tts_models, tmp_path):
    tok_dir = tiny_tts_models / "tokenizer"
    ctc_tok = load_ctc_tokenizer(tok_dir)
    dev = tmp_path / "dev"
    dev.mkdir()
    texts = {"u1": "a cab", "u2": "bad", "u3": "hello"}
    ids = {u: ctc_tok.encode(t) for u, t in texts.items()}
    for name in ("text", "ctc_text"):  # the tiny LM reads the tokenizer's CTC units
        write_kv(dev / name, {u: " ".join(map(str, v)) for u, v in ids.items()})
    rng = np.random.default_rng(0)
    write_ark_scp(dev / "speech.ark", dev / "speech.scp", [(u, rng.integers(0, 16, 6).astype(np.int32)) for u in ids])
    rcfg = MultiTaskRewardConfig(speech_vocab_size=16, text_vocab_size=ctc_tok.vocab_size, d_model=16, n_heads=2,
                                 d_ff=32, n_layers=1, dropout=0.0)
    (tmp_path / "reward").mkdir()
    torch.manual_seed(0)
    torch.save({"model": MultiTaskReward(rcfg).state_dict(), "config": {"model_conf": asdict(rcfg)}},
               tmp_path / "reward" / "model.pt")
    lm = str(tiny_tts_models / "lm.pt")
    out, results = tmp_path / "headroom", tmp_path / "results.json"
    argv = ["--token_dir", str(dev), "--tokenizer_dir", str(tok_dir), "--base_lm", lm, "--models", f"a={lm}",
            f"b={lm}", "--reward_model", str(tmp_path / "reward"), "--out_dir", str(out), "--results", str(results),
            "--best_of", "3", "--num_candidates", "2", "--top_k", "5", "--max_len_ratio", "2", "--ngpu", "0"]
    table = headroom.main(argv)
    assert table["set"] == "dev" and table["best_of"] == 3 and table["utterances"] == 3
    # recomputed from the files: every base candidate read by the tokenizer's CTC head, the best by the reward
    tokenizer = SpeechTokenizer.from_pretrained(str(tok_dir))
    base = hr.proxy_cers(str(out / "base"), str(dev), tokenizer, ctc_tok)
    assert len(base) == 9 and table["cer_base"] == pytest.approx(np.mean(list(base.values())))
    rewards = read_rewards(str(out / "base" / "rewards.tsv")).column("reward")
    best = [max((rewards[f"{u}-c{k}"], -k, base[f"{u}-c{k}"]) for k in range(3))[2] for u in ids]
    assert table["cer_best_of_n"]["token"] == pytest.approx(np.mean(best))
    for tag in ("a", "b"):
        row = table["models"][tag]
        cers = hr.proxy_cers(str(out / tag), str(dev), tokenizer, ctc_tok)
        assert len(cers) == 6 and row["cer"] == pytest.approx(np.mean(list(cers.values())))
        if row["headroom_captured"] is not None:
            gap = table["cer_base"] - table["cer_best_of_n"]["token"]
            assert row["headroom_captured"] == pytest.approx((table["cer_base"] - row["cer"]) / gap)
    stored = load_results(results)
    assert stored["base"]["dev"]["cer@tokenizer"] == pytest.approx(table["cer_base"])
    assert stored["a"]["dev"]["cer@tokenizer"] == pytest.approx(table["models"]["a"]["cer"])
    assert ("headroom_captured" in stored["a"]["dev"]) == (table["models"]["a"]["headroom_captured"] is not None)
    assert json.loads((out / "headroom.json").read_text())["models"]["b"]["reward"] == "token"
    # a rerun samples nothing again (the .done markers name the models and settings)
    stamp = (out / "base" / "tokens.scp").stat().st_mtime_ns
    assert headroom.main(argv)["cer_base"] == table["cer_base"]
    assert (out / "base" / "tokens.scp").stat().st_mtime_ns == stamp
    with pytest.raises(SystemExit):
        headroom.main([*argv, "--audio_models", "a"])  # the audio reward needs --data_dir and --flow
