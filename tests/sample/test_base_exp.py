"""ttsrl.sample.base_exp and ttsrl.bin.check_base_exp: a base trained elsewhere is checked before rl.sh uses it."""
import shutil

import pytest
from tts_helpers import save

from ttsrl.bin import check_base_exp as entrypoint
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.sample.base_exp import BaseExpError, check_base_exp
from ttsrl.text.tokenizer import read_token_list
from ttsrl.utils.checkpoint import CheckpointError


@pytest.fixture
def base(tiny_tts_models, tmp_path):
    """tests/tts_helpers' tiny models in the layout of stages 2 and 4 (an LM folder without its units)."""
    root = tmp_path / "base"
    shutil.copytree(tiny_tts_models / "tokenizer", root / "tokenizer")
    for name in ("lm", "flow"):
        (root / name).mkdir()
        shutil.copy(tiny_tts_models / f"{name}.pt", root / name / "model.pt")
    return root


def test_a_base_that_fits_together(base):
    info = check_base_exp(base, fs=16000)
    assert info.token_type == "char" and info.codebook_size == 16 and info.mel_args == []
    shutil.copy(base / "tokenizer" / "tokens.txt", base / "lm" / "tokens.txt")  # the LM's own units, as stage 4
    (base / "lm" / "token_type").write_text("char\n")
    assert check_base_exp(base, fs=16000).token_type == "char"


def test_what_is_missing_or_does_not_fit_is_named(base):
    with pytest.raises(BaseExpError, match="missing vocoder/model.pt"):
        check_base_exp(base, fs=16000, vocoder="vocos")
    with pytest.raises(BaseExpError, match=r"reads 16000 Hz audio, the recipe's data is at --fs 24000: give --fs 16000"):
        check_base_exp(base, fs=24000)
    tokens = read_token_list(base / "tokenizer" / "tokens.txt")
    cfg = CodecLMConfig(text_vocab_size=len(tokens), speech_vocab_size=32, d_model=16, n_layers=1, n_heads=2,
                        d_ff=32)
    save(CodecLM(cfg), cfg, base / "lm" / "model.pt")  # another codebook
    with pytest.raises(BaseExpError, match="lm/model.pt: speech_vocab_size 32, but the tokenizer's codebook has 16"):
        check_base_exp(base, fs=16000)
    cfg.speech_vocab_size, cfg.text_vocab_size = 16, len(tokens) + 3
    save(CodecLM(cfg), cfg, base / "lm" / "model.pt")  # a text vocabulary its units do not give
    with pytest.raises(BaseExpError, match=f"text_vocab_size {len(tokens) + 3}, but its text units"):
        check_base_exp(base, fs=16000)
    whole = (base / "flow" / "model.pt").read_bytes()
    (base / "flow" / "model.pt").write_bytes(whole[: len(whole) // 3])
    cfg.text_vocab_size = len(tokens)
    save(CodecLM(cfg), cfg, base / "lm" / "model.pt")
    with pytest.raises(CheckpointError, match="flow/model.pt: cannot be read"):
        check_base_exp(base, fs=16000)
    (base / "flow" / "model.pt").unlink()
    with pytest.raises(BaseExpError, match="missing flow/model.pt"):
        check_base_exp(base, fs=16000)


def test_entrypoint_prints_what_rl_sh_reads(base, capsys, caplog):
    assert entrypoint.main(["--base_exp", str(base), "--fs", "16000"]) == 0
    assert capsys.readouterr().out == "token_type char\nmel_args\n"
    (base / "lm" / "model.pt").write_bytes(b"")
    with pytest.raises(SystemExit) as e:
        entrypoint.main(["--base_exp", str(base)])
    assert e.value.code == 1 and "lm/model.pt: cannot be read as a checkpoint" in caplog.text
    with pytest.raises(SystemExit) as e:
        entrypoint.main(["--help"])
    assert e.value.code == 0 and "--base_exp" in capsys.readouterr().out
