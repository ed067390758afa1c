"""Synthesis pipeline: prompts, golden-token resynthesis, per-utterance errors, resume."""
import os

import numpy as np
import pytest
from tts_helpers import make_prompted_set

from ttsrl.bin import synthesize
from ttsrl.data.arrays import write_ark_scp
from ttsrl.data.datadir import read_kv, write_kv


@pytest.fixture(scope="module")
def models(tiny_tts_models):
    return tiny_tts_models


def args(models, d, out, *extra):
    return ["--data_dir", d, "--out_dir", str(out), "--tokenizer_dir", str(models / "tokenizer"),
            "--lm", str(models / "lm.pt"), "--flow", str(models / "flow.pt"), "--ngpu", "0",
            "--flow_n_steps", "2", "--max_len_ratio", "2", "--top_k", "5", "--batch_size", "2", *extra]


def test_synthesis_with_prompts_errors_and_resume(models, tmp_path):
    d, utts = make_prompted_set(tmp_path)
    out = tmp_path / "decode"
    synthesize.main(args(models, d, out))
    wavs = read_kv(out / "wav.scp")
    errors = read_kv(out / "errors")
    assert set(errors) == {utts[1]} and "unknown symbols" in errors[utts[1]]
    assert set(wavs) == set(utts) - {utts[1]}
    import soundfile as sf

    for path in wavs.values():
        wav, sr = sf.read(path)
        assert sr == 16000 and len(wav) > 0 and np.isfinite(wav).all()
    assert float((out / "rtf").read_text()) > 0
    mtimes = {p: os.path.getmtime(p) for p in wavs.values()}
    synthesize.main(args(models, d, out))  # resume: nothing is redone
    assert {p: os.path.getmtime(p) for p in wavs.values()} == mtimes


def test_jobs_split_the_utterances_and_write_their_own_lists(models, tmp_path):
    d, utts = make_prompted_set(tmp_path)
    out = tmp_path / "decode"
    for job in (1, 2):
        synthesize.main(args(models, d, out, "--job", str(job), "--num_jobs", "2", "--num_threads", "1"))
    lists = [read_kv(out / f"wav.{job}.scp") for job in (1, 2)]
    errors = [read_kv(out / f"errors.{job}") for job in (1, 2)]
    assert not set(lists[0]) & set(lists[1])
    assert set(lists[0]) | set(lists[1]) == set(utts) - {utts[1]}  # utts[1] fails in job 2, into its errors
    assert errors == [{}, {utts[1]: errors[1][utts[1]]}] and "unknown symbols" in errors[1][utts[1]]
    assert set(lists[1]) == {utts[3]} and set(lists[0]) == {utts[0], utts[2]}
    assert not (out / "wav.scp").exists() and float((out / "rtf.1").read_text()) > 0
    assert {os.path.dirname(p) for lst in lists for p in lst.values()} == {str(out / "wav")}
    with pytest.raises(SystemExit, match="--job 3 must be in 1..2"):
        synthesize.main(args(models, d, out, "--job", "3", "--num_jobs", "2"))


def test_an_over_long_text_fails_alone_and_a_run_without_audio_exits_1(models, tmp_path):
    """One 2,000-character text made its whole batch fail, and synthesize exited 0 with nothing written."""
    d, utts = make_prompted_set(tmp_path)
    texts = read_kv(os.path.join(d, "text"))
    write_kv(os.path.join(d, "text"), {**texts, utts[0]: "hello world " * 60})  # beyond the LM's 512 positions
    out = tmp_path / "decode"
    assert synthesize.main(args(models, d, out, "--batch_size", "8")) == 0  # one batch of all four
    errors = read_kv(out / "errors")
    assert set(errors) == {utts[0], utts[1]} and "exceeds max_len" in errors[utts[0]], errors
    assert set(read_kv(out / "wav.scp")) == {utts[2], utts[3]}
    write_kv(os.path.join(d, "text"), {u: "hello world " * 60 for u in utts})
    with pytest.raises(SystemExit) as e:  # every utterance failed: stage 8 must not be marked done
        synthesize.main(args(models, d, tmp_path / "none"))
    assert e.value.code == 1 and len(read_kv(tmp_path / "none" / "errors")) == len(utts)


def test_letters_the_units_cannot_spell_are_named_and_fail_when_strict(models, tmp_path, caplog):
    import logging

    from ttsrl.sample.synthesize import TTSPipeline, UttError

    kw = {"lm": str(models / "lm.pt"), "flow": str(models / "flow.pt"), "tokenizer": str(models / "tokenizer")}
    tts = TTSPipeline.from_dirs(**kw)
    with caplog.at_level(logging.WARNING):
        assert tts.encode_text("u1", "hello 你好 world") == tts.encode_text("u2", "hello world")
    assert "the text of 'u1' has characters the char units cannot spell: '你好'" in caplog.text
    with pytest.raises(UttError, match="nothing to say in the text of 'u3': all of '你好' was dropped"):
        tts.encode_text("u3", "你好")  # was the misleading "empty text"
    strict = TTSPipeline.from_dirs(**kw, strict_text=True)
    with pytest.raises(UttError, match="'u1' has characters .* '你好' .*strict"):
        strict.encode_text("u1", "hello 你好 world")
    d, utts = make_prompted_set(tmp_path)
    texts = read_kv(os.path.join(d, "text"))
    write_kv(os.path.join(d, "text"), {**texts, utts[2]: "hello 世界"})
    out = tmp_path / "decode"
    synthesize.main(args(models, d, out, "--strict_text", "true"))
    errors = read_kv(out / "errors")
    assert "cannot spell: '世界'" in errors[utts[2]] and utts[2] not in read_kv(out / "wav.scp")


def test_missing_prompt_wav_is_a_per_utterance_error(models, tmp_path):
    d, utts = make_prompted_set(tmp_path)
    prompts = read_kv(os.path.join(d, "prompt.scp"))
    write_kv(os.path.join(d, "prompt.scp"), {**prompts, utts[0]: str(tmp_path / "absent.wav")})
    out = tmp_path / "decode"
    synthesize.main(args(models, d, out))
    errors = read_kv(out / "errors")
    assert "cannot be read" in errors[utts[0]] and "absent.wav" in errors[utts[0]]
    assert len(read_kv(out / "wav.scp")) == len(utts) - 2


def golden_resynth(models, tmp_path, d, utts, name, *extra) -> dict:
    """Resynthesize 8 golden tokens per utterance of ``d`` without the LM; the wav.scp as a dict."""
    scp = tmp_path / "speech.scp"
    if not scp.exists():
        write_ark_scp(tmp_path / "speech.ark", scp, [(u, np.arange(1, 9, dtype=np.int32)) for u in sorted(utts)])
    out = tmp_path / name
    synthesize.main(["--data_dir", d, "--out_dir", str(out), "--tokenizer_dir", str(models / "tokenizer"),
                     "--flow", str(models / "flow.pt"), "--golden_tokens", str(scp), "--flow_n_steps", "2",
                     "--ngpu", "0", "--use_prompts", "false", *extra])
    return read_kv(out / "wav.scp")


def test_golden_token_resynthesis_without_lm(models, tmp_path):
    d, utts = make_prompted_set(tmp_path)
    write_kv(os.path.join(d, "text"), {u: "abc" for u in utts})
    wavs = golden_resynth(models, tmp_path, d, utts, "resynth")
    assert set(wavs) == set(utts)
    import soundfile as sf

    assert abs(len(sf.read(wavs[utts[0]])[0]) - 8 * 4 * 160) <= 160  # 8 tokens x 4 frames x hop


def test_flow_temperature_scales_the_starting_noise(models, tmp_path):
    import soundfile as sf

    d, utts = make_prompted_set(tmp_path)

    def resynth(name, *extra):
        return sf.read(golden_resynth(models, tmp_path, d, utts, name, *extra)[utts[0]])[0]

    # temperature 0 starts the ODE at zero: the flow's seed no longer matters; at 1 it does
    assert np.allclose(resynth("t0s1", "--flow_temperature", "0", "--flow_seed", "1"),
                       resynth("t0s2", "--flow_temperature", "0", "--flow_seed", "2"))
    assert not np.allclose(resynth("t1s1", "--flow_seed", "1"), resynth("t1s2", "--flow_seed", "2"))


def test_griffin_lim_iterations_change_the_audio(models, tmp_path):
    import soundfile as sf

    from ttsrl.sample.synthesize import TTSPipeline

    tts = TTSPipeline.from_dirs(None, str(models / "flow.pt"), str(models / "tokenizer"), griffin_lim_iters=3)
    assert tts.vocoder.n_iter == 3
    d, utts = make_prompted_set(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    synthesize.main(args(models, d, a, "--seed", "1"))
    synthesize.main(args(models, d, b, "--seed", "1", "--griffin_lim_iters", "2"))
    u = sorted(read_kv(a / "wav.scp"))[0]
    wa, wb = sf.read(read_kv(a / "wav.scp")[u])[0], sf.read(read_kv(b / "wav.scp")[u])[0]
    assert len(wa) == len(wb) and not np.allclose(wa, wb)


def test_lm_prompt_false_prompts_the_flow_only(models, tmp_path):
    import torch

    from ttsrl.sample.sampler import SamplingConfig
    from ttsrl.sample.synthesize import FlowOptions, Request, TTSPipeline, UttError

    d, utts = make_prompted_set(tmp_path)
    prompts, texts = read_kv(os.path.join(d, "prompt.scp")), read_kv(os.path.join(d, "text"))
    u = utts[0]
    kw = {"lm": str(models / "lm.pt"), "flow": str(models / "flow.pt"), "tokenizer": str(models / "tokenizer")}
    flow_only, full = TTSPipeline.from_dirs(**kw, lm_prompt=False), TTSPipeline.from_dirs(**kw)
    # the prompt's transcript is not read: its unknown "z" is no error here
    item = flow_only.prepare(Request(u, texts[u], prompts[u], "a buzz"))
    bare = flow_only.prepare(Request(u, texts[u]))
    assert item["prompt_mel"] is not None and item["prompt_text"] == []
    with pytest.raises(UttError, match=u):
        full.prepare(Request(u, texts[u], prompts[u], "a buzz"))
    cfg = SamplingConfig(top_k=5, max_len_ratio=2, seed=3)
    # the LM sees the text alone: the same draw as an unprompted request ...
    tokens = flow_only.speech_tokens([item], cfg)
    assert torch.equal(tokens[0], full.speech_tokens([bare], cfg)[0])
    # ... while the flow model still gets the prompt (its mel changes the audio)
    opts = FlowOptions(n_steps=2)
    with_prompt = flow_only.tokens_to_wav([item], tokens, opts)[0]
    without = flow_only.tokens_to_wav([bare], tokens, opts)[0]
    assert with_prompt.shape == without.shape and not np.allclose(with_prompt, without)


def test_the_lm_folders_text_units_encode_the_texts(models, tmp_path):
    """An LM trained on phonemes synthesizes from phonemes; resynthesis and older LM folders use the CTC units."""
    from tts_helpers import save

    from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
    from ttsrl.sample.synthesize import TTSPipeline, UttError
    from ttsrl.text.tokenizer import (
        CharTokenizer,
        PhonemeTokenizer,
        build_token_list,
        build_tokenizer,
        write_text_units,
    )

    d, utts = make_prompted_set(tmp_path)
    texts = read_kv(os.path.join(d, "text"))
    phn = build_tokenizer("phn", build_token_list("phn", [*texts.values(), "hello"]))
    lm_dir = tmp_path / "lm"  # what train_lm writes: model.pt and its text units
    lm_dir.mkdir()
    cfg = CodecLMConfig(text_vocab_size=phn.vocab_size, speech_vocab_size=16, d_model=16, n_layers=1, n_heads=2,
                        d_ff=32, dropout=0.0, max_len=512)
    save(CodecLM(cfg), cfg, lm_dir / "model.pt")
    write_text_units(lm_dir, phn)
    kw = {"flow": str(models / "flow.pt"), "tokenizer": str(models / "tokenizer"), "griffin_lim_iters": 3}
    tts = TTSPipeline.from_dirs(str(lm_dir / "model.pt"), **kw)
    assert isinstance(tts.text_tokenizer, PhonemeTokenizer) and isinstance(tts.ctc_tokenizer, CharTokenizer)
    # "z" is not among the tokenizer's characters, but its phone is among the LM's units
    assert tts.encode_text("u", "a buzz") == phn.encode("a buzz")
    with pytest.raises(UttError, match="unknown symbols"):
        tts.encode_text("u", "a buzz", ctc=True)
    with pytest.raises(UttError, match="utterance 'u': cannot phonemize '日'"):
        tts.encode_text("u", "a 日本")
    for lm in (None, str(models / "lm.pt")):  # resynthesis; an LM folder without tokens.txt (older models)
        assert isinstance(TTSPipeline.from_dirs(lm, **kw).text_tokenizer, CharTokenizer)
    out = tmp_path / "decode"
    synthesize.main(["--data_dir", d, "--out_dir", str(out), "--tokenizer_dir", str(models / "tokenizer"),
                     "--lm", str(lm_dir / "model.pt"), "--flow", str(models / "flow.pt"), "--flow_n_steps", "2",
                     "--max_len_ratio", "2", "--top_k", "5", "--griffin_lim_iters", "3"])
    assert read_kv(out / "errors") == {} and set(read_kv(out / "wav.scp")) == set(utts)  # utts[1] too
    write_text_units(lm_dir, build_tokenizer("phn", phn.tokens[:-2] + phn.tokens[-1:]))
    with pytest.raises(ValueError, match="do not fit its text vocabulary"):
        TTSPipeline.from_dirs(str(lm_dir), **kw)


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        synthesize.main(["--help"])
    assert e.value.code == 0 and "--lm" in capsys.readouterr().out
