"""The judges load from the files inside their packages (offline) and give sensible numbers."""

import numpy as np
import pytest

from ttsrl.score.asr import ASR_JUDGES, JudgeUnavailable, build_asr_judge
from ttsrl.score.quality import DNSMOS, f0_variance
from ttsrl.score.speaker import SpeakerSim
from ttsrl.score.wer import utterance_errors


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a judge tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_pocketsphinx_transcribes_espeak(speech):
    judge = build_asr_judge("pocketsphinx")
    wavs = [speech["hello"][0], speech["coffee"][0]]
    hyps = judge.transcribe(wavs, 16000)
    assert len(hyps) == 2 and all(isinstance(h, str) for h in hyps)
    assert "hello" in hyps[0].split() or "world" in hyps[0].split(), hyps
    assert utterance_errors("i would like a cup of coffee please", hyps[1]).rate < 1.0, hyps
    assert judge.transcribe(wavs, 16000) == hyps  # deterministic
    assert isinstance(judge.transcribe([np.zeros(1600, dtype=np.float32)], 16000)[0], str)  # silence


def test_pocketsphinx_resamples(speech):
    import soxr

    wav22 = soxr.resample(speech["hello"][0], 16000, 22050).astype(np.float32)
    assert isinstance(build_asr_judge("pocketsphinx").transcribe([wav22], 22050)[0], str)


def test_registry_and_whisper_errors(tmp_path):
    assert {"pocketsphinx", "whisper"} <= set(ASR_JUDGES)
    with pytest.raises(ValueError, match="unknown ASR judge"):
        build_asr_judge("paraformer")
    with pytest.raises(JudgeUnavailable, match="local checkpoint"):
        build_asr_judge("whisper")
    with pytest.raises(FileNotFoundError, match="whisper checkpoint not found"):
        build_asr_judge("whisper", path=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(JudgeUnavailable, match="no config.json"):
        build_asr_judge("whisper", path=str(tmp_path / "empty"))


def test_speaker_similarity(speech):
    sim = SpeakerSim()
    coffee, sr = speech["coffee"]
    e = sim.embed(coffee, sr)
    assert e.shape == (256,) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-3)
    same = sim.similarity(coffee, sr, coffee, sr)
    other_voice = sim.similarity(coffee, sr, *speech["coffee_f"])
    assert same == pytest.approx(1.0, abs=1e-4)
    assert other_voice < same - 0.05
    with pytest.raises(ValueError, match="empty"):
        sim.embed(np.zeros(0, dtype=np.float32), sr)


def test_ecapa_is_reported_unavailable(tmp_path):
    ckpt = tmp_path / "wavlm_large_finetune.pth"
    with pytest.raises(JudgeUnavailable, match="local checkpoint"):
        SpeakerSim("ecapa")
    with pytest.raises(FileNotFoundError):
        SpeakerSim("ecapa", checkpoint=str(ckpt))
    ckpt.write_bytes(b"x")
    with pytest.raises(JudgeUnavailable, match="WavLM-large network"):
        SpeakerSim("ecapa", checkpoint=str(ckpt))
    with pytest.raises(ValueError, match="unknown speaker similarity backend"):
        SpeakerSim("xvector")


def test_dnsmos_in_range(speech):
    mos = DNSMOS().score(*speech["other"])
    assert set(mos) == {"ovrl", "sig", "bak", "p808"}
    for value in mos.values():
        assert np.isfinite(value) and 1.0 <= value <= 5.0
    with pytest.raises(ValueError, match="empty"):
        DNSMOS().score(np.zeros(0, dtype=np.float32), 16000)


def test_f0_variance(speech):
    v = f0_variance(*speech["other"])
    assert np.isfinite(v) and v > 0
    assert f0_variance(np.zeros(16000, dtype=np.float32), 16000) == 0.0


def tiny_whisper_checkpoint(path):
    """A randomly initialized 1-layer Whisper with a byte-level vocabulary, saved as a
    transformers folder: exercises the local-checkpoint loading and batched decoding."""
    import json

    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    path.mkdir()
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
                "<|notimestamps|>"]  # fmt: skip
    for s in specials:
        vocab[s] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tok = WhisperTokenizer(
        str(path / "vocab.json"), str(path / "merges.txt"), additional_special_tokens=specials[1:]
    )
    WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok
    ).save_pretrained(path)
    eos, sot = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
        max_target_positions=32, pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=sot,
    )  # fmt: skip
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eos, pad_token_id=eos, max_length=12, is_multilingual=True,
        lang_to_id={"<|en|>": vocab["<|en|>"]}, no_timestamps_token_id=vocab["<|notimestamps|>"],
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
    )  # fmt: skip
    model.save_pretrained(path)


def test_whisper_from_a_local_transformers_folder(tmp_path):
    pytest.importorskip("transformers")
    tiny_whisper_checkpoint(tmp_path / "whisper")
    judge = build_asr_judge("whisper", path=str(tmp_path / "whisper"), language="en", batch_size=2)
    assert judge.backend == "transformers"
    wavs = [
        np.zeros(8000, dtype=np.float32),
        0.1 * np.ones(4000, dtype=np.float32),
        np.zeros(100, np.float32),
    ]
    hyps = judge.transcribe(wavs, 16000)
    assert len(hyps) == 3 and all(isinstance(h, str) for h in hyps)
