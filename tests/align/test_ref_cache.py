"""Reference log-prob cache: the values of an unbatched reference pass, reuse, recomputation when stale."""
import json
import logging
from dataclasses import asdict

import numpy as np
import pytest
import torch

import ttsrl.align.ref_cache as ref_cache
from ttsrl.align.data import PairDataset, collate_pairs, forward_rows
from ttsrl.align.ref_cache import load_or_compute_ref_logps
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDirError, write_kv
from ttsrl.losses.preference import sequence_logprobs
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig, load_codec_lm


def make_data(root, n=6, seed=0):
    """A token dir with prompts, a tiny LM's model.pt and a pairs.jsonl (one line without rejected)."""
    rng = np.random.default_rng(seed)
    tok = root / "tokens"
    tok.mkdir(parents=True)
    utts = [f"u{i:02d}" for i in range(n)]
    text = {u: [int(x) for x in rng.integers(2, 9, rng.integers(2, 5))] for u in utts}
    write_kv(tok / "text", {u: " ".join(map(str, t)) for u, t in text.items()})
    write_ark_scp(tok / "speech.ark", tok / "speech.scp",
                  [(u, np.array([c for t in text[u] for c in (t, t + 10)], dtype=np.int32)) for u in utts])
    write_kv(tok / "prompt_text", {u: "2 3" for u in utts})
    write_ark_scp(tok / "prompt_speech.ark", tok / "prompt_speech.scp",
                  [(u, np.array([2, 12, 3][: 1 + i % 3], dtype=np.int32)) for i, u in enumerate(utts)])
    with open(root / "pairs.jsonl", "w") as f:
        for i, u in enumerate(utts):
            chosen = [c for t in text[u] for c in (t, t + 10)]
            rejected = None if i == 2 else [int(x) for x in rng.integers(0, 20, rng.integers(1, 9))]
            f.write(json.dumps({"utt": u, "chosen": chosen, "rejected": rejected, "chosen_reward": 1.0,
                                "rejected_reward": 0.0, "chosen_key": u, "rejected_key": f"{u}-c0",
                                "mode": "best_worst"}) + "\n")
    torch.manual_seed(seed)
    cfg = CodecLMConfig(text_vocab_size=10, speech_vocab_size=20, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                        dropout=0.0, max_len=64)
    torch.save({"model": CodecLM(cfg).state_dict(), "config": {"model_conf": asdict(cfg)}}, root / "lm.pt")
    return tok, root / "pairs.jsonl", root / "lm.pt"


def unbatched(model, ds, i, row):
    batch = collate_pairs([ds[i]])
    with torch.no_grad():
        logp, mask, _ = forward_rows(model, batch, (row,))
    return float(sequence_logprobs(logp, mask)[0]), int(mask.sum())


def test_cache_values_reuse_and_staleness(tmp_path, monkeypatch, caplog):
    tok, pairs, lm = make_data(tmp_path)
    ref = load_codec_lm(str(lm))
    ds = PairDataset(str(tok), str(pairs), with_prompt=True)
    path = str(tmp_path / "exp" / "ref_logps.pt")
    cache = load_or_compute_ref_logps(path, ref, ds, str(lm), max_tokens=60)
    for i in range(len(ds)):
        c, nc = unbatched(ref, ds, i, "chosen")
        assert cache.chosen[i].item() == pytest.approx(c, abs=1e-4) and cache.chosen_tokens[i] == nc
        if i == 2:  # no rejected sequence
            assert torch.isnan(cache.rejected[i]) and cache.rejected_tokens[i] == 0
        else:
            r, nr = unbatched(ref, ds, i, "rejected")
            assert cache.rejected[i].item() == pytest.approx(r, abs=1e-4) and cache.rejected_tokens[i] == nr
    idx = torch.tensor([0, 3])
    c, r = cache.sequence(idx, average=True)
    torch.testing.assert_close(c, (cache.chosen[idx] / cache.chosen_tokens[idx]).float())
    torch.testing.assert_close(r, (cache.rejected[idx] / cache.rejected_tokens[idx]).float())

    def boom(*a, **k):
        raise AssertionError("recomputed a valid cache")

    monkeypatch.setattr(ref_cache, "compute_ref_logps", boom)
    again = load_or_compute_ref_logps(path, ref, PairDataset(str(tok), str(pairs), with_prompt=True), str(lm))
    torch.testing.assert_close(again.chosen, cache.chosen)
    monkeypatch.undo()

    # a changed pair file: stale, recomputed with a warning
    lines = pairs.read_text().splitlines()
    pairs.write_text("\n".join(lines[::-1]) + "\n")
    with caplog.at_level(logging.WARNING, logger="ttsrl"):
        new = load_or_compute_ref_logps(path, ref, PairDataset(str(tok), str(pairs), with_prompt=True), str(lm))
    assert "stale (pairs_sha256 changed)" in caplog.text
    torch.testing.assert_close(new.chosen, cache.chosen.flip(0))
    # the prompt setting is part of the stamp too
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ttsrl"):
        load_or_compute_ref_logps(path, ref, PairDataset(str(tok), str(pairs), with_prompt=False), str(lm))
    assert "with_prompt" in caplog.text


def test_pair_file_errors(tmp_path):
    tok, pairs, _ = make_data(tmp_path)
    pairs.write_text('{"utt": "nope", "chosen": [1, 2], "rejected": null}\n')
    with pytest.raises(DataDirError, match=r"pairs.jsonl:1: utterance 'nope' is not in"):
        PairDataset(str(tok), str(pairs))
    pairs.write_text('{"utt": "u00", "chosen": [1, 25], "rejected": null}\n')
    with pytest.raises(DataDirError, match=r"outside \[0, 20\)"):
        PairDataset(str(tok), str(pairs), speech_vocab_size=20)
    with pytest.raises(DataDirError, match="no usable pairs"):
        PairDataset(str(tok), str(pairs), need_rejected=True)
    pairs.write_text('{"utt": "u00", "chosen": "1 2"}\n')
    with pytest.raises(DataDirError, match="pairs.jsonl:1: 'chosen' must be a list"):
        PairDataset(str(tok), str(pairs))
