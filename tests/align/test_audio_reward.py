"""The audio-level reward: synthesis with prompts, its components, the reward ASR, and rewards.tsv via the CLI."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tts_helpers import make_prompted_set

from ttsrl.align.audio_reward import AudioReward
from ttsrl.align.pairs import read_rewards
from ttsrl.bin import make_pairs, score_candidates
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import DataDir, write_kv
from ttsrl.models.asr import CTCASR, CTCASRConfig
from ttsrl.models.ctc import greedy_ctc
from ttsrl.models.speech_tokenizer import unit_error_rates
from ttsrl.sample.synthesize import FlowOptions, TTSPipeline, UttError
from ttsrl.text.tokenizer import build_token_list
from ttsrl.utils.config import to_plain


@pytest.fixture
def setup(tiny_tts_models, tmp_path):
    d, utts = make_prompted_set(tmp_path)
    utts = [u for i, u in enumerate(utts) if i != 1]  # utterance 1's text has an unknown symbol
    tts = TTSPipeline.from_dirs(None, str(tiny_tts_models / "flow.pt"), str(tiny_tts_models / "tokenizer"),
                                griffin_lim_iters=2)
    rng = np.random.default_rng(0)
    tokens = [rng.integers(0, 16, n) for n in (5, 9, 7)]
    return tts, d, utts, tokens


def test_text_component_is_the_tokenizer_ctc_loglik_of_the_synthesized_audio(setup):
    tts, d, utts, tokens = setup
    scorer = AudioReward(tts, d, flow_opts=FlowOptions(n_steps=2))
    out = scorer.score(tokens, utts=utts)
    assert set(out) == {"text", "reward"} and out["reward"].shape == (3,)
    assert torch.equal(out["reward"], out["text"])  # default weights: text 1.0
    # recompute one candidate by hand: synthesize (the same batch: the flow's noise is drawn per batch),
    # re-tokenize alone (no padding), CTC of its text
    wav = scorer.synthesize(tokens, utts)[1]
    tok = tts.tokenizer
    with torch.no_grad():
        codes, lens = tok.encode_wav(wav, tts.sample_rate)
        lp, lp_lens = tok.ctc_log_probs(codes, lens)
    text = torch.tensor([scorer._item(utts[1])["text"]])
    nll = F.ctc_loss(lp.transpose(0, 1), text, lp_lens, torch.tensor([text.shape[1]]), reduction="none")
    expected = -float(nll) / text.shape[1] if torch.isfinite(nll).all() else -20.0
    assert float(out["text"][1]) == pytest.approx(expected, rel=1e-4, abs=1e-4)
    again = scorer.score(tokens, utts=utts)  # the flow's noise is seeded: the same audio, the same reward
    assert torch.allclose(again["reward"], out["reward"])


def test_weighted_components(setup):
    tts, d, utts, tokens = setup
    weights = {"text": 1.0, "sim": 0.5, "f0v": -0.1}
    out = AudioReward(tts, d, weights, flow_opts=FlowOptions(n_steps=2)).score(tokens, utts=utts)
    assert set(out) == {"text", "sim", "f0v", "reward"}
    assert ((out["sim"] >= -1) & (out["sim"] <= 1)).all() and (out["f0v"] >= 0).all()
    assert torch.allclose(out["reward"], out["text"] + 0.5 * out["sim"] - 0.1 * out["f0v"], atol=1e-5)


def test_reward_asr_from_a_trained_ctc_asr(setup, tmp_path):
    tts, d, utts, tokens = setup
    texts = list(DataDir.load(d).text.values())
    conf = CTCASRConfig(token_list=build_token_list("char", texts), d_model=16, n_heads=2, d_ff=32, n_layers=1,
                        conv_kernel=3, dropout=0.0)
    torch.manual_seed(0)
    asr = CTCASR(conf)
    torch.save({"model": asr.state_dict(), "config": {"model_conf": to_plain(dataclasses.asdict(conf))}},
               tmp_path / "asr.pt")
    scorer = AudioReward(tts, d, asr=str(tmp_path / "asr.pt"), flow_opts=FlowOptions(n_steps=2))
    out = scorer.score(tokens, utts=utts)
    wavs = scorer.synthesize(tokens, utts)
    nll = asr.eval().ctc_nll(wavs, tts.sample_rate, [DataDir.load(d).text[u] for u in utts])
    # a text longer than the CTC frames can hold (inf NLL) gets the infeasible floor
    assert out["text"].tolist() == pytest.approx([-n if np.isfinite(n) else -20.0 for n in nll], rel=1e-4)


def test_bad_inputs(setup):
    tts, d, utts, tokens = setup
    with pytest.raises(ValueError, match="unknown audio reward components"):
        AudioReward(tts, d, {"loudness": 1.0})
    scorer = AudioReward(tts, d)
    with pytest.raises(UttError, match="nobody"):
        scorer.score(tokens[:1], utts=["nobody"])
    with pytest.raises(ValueError, match="utts"):
        scorer.score(tokens)
    with pytest.raises(ValueError, match="3 candidates but 2"):
        scorer.score(tokens, utts=utts[:2])


def test_score_candidates_cli_writes_rewards_for_make_pairs(setup, tiny_tts_models, tmp_path):
    tts, d, utts, tokens = setup
    samples, tok_dir = tmp_path / "samples", tmp_path / "tokens"
    samples.mkdir()
    tok_dir.mkdir()
    cands = {f"{u}-c{k}": tokens[(i + k) % 3].astype(np.int32) for i, u in enumerate(utts) for k in range(2)}
    write_ark_scp(samples / "tokens.ark", samples / "tokens.scp", sorted(cands.items()))
    write_kv(tok_dir / "text", {u: "3 4 5" for u in utts})
    summary = score_candidates.main([
        "--reward", "audio", "--samples_dir", str(samples), "--token_dir", str(tok_dir), "--data_dir", d,
        "--tokenizer_dir", str(tiny_tts_models / "tokenizer"), "--flow", str(tiny_tts_models / "flow.pt"),
        "--weights", "{text: 1.0, f0v: 0.1}", "--flow_n_steps", "2", "--griffin_lim_iters", "2", "--ngpu", "0",
        "--batch_size", "4"])
    assert summary["candidates"] == 6 and summary["columns"] == ["text", "f0v", "reward"]
    rewards = read_rewards(samples / "rewards.tsv")
    assert set(rewards.values) == set(cands) and rewards.columns == ["text", "f0v", "reward"]
    make_pairs.main(["--rewards", str(samples / "rewards.tsv"), "--samples_dir", str(samples),
                     "--out_dir", str(tmp_path / "pairs")])
    assert (tmp_path / "pairs" / "pairs.jsonl").is_file()
    with pytest.raises(SystemExit, match="--data_dir"):
        score_candidates.main(["--reward", "audio", "--samples_dir", str(samples), "--token_dir", str(tok_dir)])


def test_audio_reward_cer_reads_the_re_encoded_audio(setup):
    tts, d, utts, tokens = setup
    scorer = AudioReward(tts, d, flow_opts=FlowOptions(n_steps=2))
    out = scorer.score(tokens, utts=utts, cer=True)
    assert set(out) == {"text", "reward", "cer"} and out["cer"].shape == (3,) and (out["cer"] >= 0).all()
    assert torch.allclose(out["text"], scorer.score(tokens, utts=utts)["text"])  # the same pass, the same reward
    wavs = scorer.synthesize(tokens, utts)
    tok = tts.tokenizer
    with torch.no_grad():  # candidate 0 re-encoded alone, read greedily
        codes, lens = tok.encode_wav(wavs[0], tts.sample_rate)
        lp, lp_lens = tok.ctc_log_probs(codes, lens)
    ref = list(scorer._item(utts[0])["ctc_text"])
    assert float(out["cer"][0]) == pytest.approx(unit_error_rates([ref], greedy_ctc(lp, lp_lens))[0])
