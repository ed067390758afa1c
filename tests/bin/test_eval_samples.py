"""ttsrl.bin.eval_samples: candidates read by the tokenizer's CTC head, against a hand computation."""
import json

import numpy as np
import pytest
import torch

from ttsrl.bin import eval_samples
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import write_kv
from ttsrl.data.toy import make_toy_data_dir
from ttsrl.models.speech_tokenizer import SpeechTokenizer, edit_distance, load_ctc_tokenizer


@pytest.fixture()
def setup(tiny_tts_models, tmp_path):
    d = make_toy_data_dir(tmp_path / "data", num_spk=1, utts_per_spk=2, duration=0.3)
    utts = sorted(line.split()[0] for line in open(f"{d}/text"))
    write_kv(f"{d}/text", {utts[0]: "abc", utts[1]: "dead beef"})
    rng = np.random.default_rng(0)
    cands = {f"{u}-c{k}": rng.integers(0, 16, size=n).astype(np.int32)
             for u in utts for k, n in ((0, 9), (1, 14))}
    samples = tmp_path / "samples"
    samples.mkdir()
    write_ark_scp(samples / "tokens.ark", samples / "tokens.scp", sorted(cands.items()))
    write_kv(samples / "finished", {k: str(int(k.endswith("c0"))) for k in cands})
    tok = tmp_path / "tok"
    tok.mkdir()
    gold = {u: rng.integers(0, 16, size=12).astype(np.int32) for u in utts}
    write_ark_scp(tok / "speech.ark", tok / "speech.scp", sorted(gold.items()))
    return {"data": d, "samples": samples, "tok": tok, "cands": cands, "gold": gold,
            "texts": {utts[0]: "abc", utts[1]: "dead beef"}, "tokenizer": tiny_tts_models / "tokenizer"}


def test_cer_lengths_and_floor_by_hand(setup, tmp_path):
    out = tmp_path / "cer.json"
    s = eval_samples.main(["--samples_dir", str(setup["samples"]), "--data_dir", str(setup["data"]),
                           "--tokenizer_dir", str(setup["tokenizer"]), "--token_dir", str(setup["tok"]),
                           "--out", str(out), "--batch_size", "3"])
    model = SpeechTokenizer.from_pretrained(setup["tokenizer"])
    ctc_tok = load_ctc_tokenizer(setup["tokenizer"])

    def cer(seq, text):
        hyp = ctc_tok.decode(model.ctc_decode(torch.as_tensor(seq, dtype=torch.long)[None],
                                              torch.tensor([len(seq)]))[0])
        return 100.0 * edit_distance(text, hyp) / len(text)

    rates = [cer(v, setup["texts"][k.rsplit("-c", 1)[0]]) for k, v in setup["cands"].items()]
    assert s["cer_mean"] == pytest.approx(np.mean(rates), abs=1e-3)
    assert s["candidates"] == 4 and s["utterances"] == 2 and s["cut"] == 2
    assert s["len_ratio_q50"] == pytest.approx(np.median([9 / 12, 14 / 12, 9 / 12, 14 / 12]), abs=1e-3)
    floor = np.mean([cer(g, setup["texts"][u]) for u, g in setup["gold"].items()])
    assert s["golden_cer_mean"] == pytest.approx(floor, abs=1e-3)
    assert json.loads(out.read_text()) == s


def test_unknown_utterance_fails_naming_it(setup, tmp_path, caplog):
    bad = tmp_path / "bad"
    bad.mkdir()
    write_ark_scp(bad / "tokens.ark", bad / "tokens.scp", [("nobody-c0", np.array([1, 2], dtype=np.int32))])
    with pytest.raises(SystemExit) as e:
        eval_samples.main(["--samples_dir", str(bad), "--data_dir", str(setup["data"]),
                           "--tokenizer_dir", str(setup["tokenizer"])])
    assert e.value.code == 1 and "nobody" in caplog.text


def test_help():
    with pytest.raises(SystemExit) as e:
        eval_samples.main(["--help"])
    assert e.value.code == 0
