"""ttsrl.bin.tokenize_text: --help, char/phn/bpe runs on a tiny text file, failures exit non-zero."""

import subprocess
import sys

import pytest

from ttsrl.bin.tokenize_text import get_parser, main
from ttsrl.text.tokenizer import UNK_ID, build_tokenizer, read_token_list

TEXT = {
    "spk1-u1": "Hello, world!",
    "spk1-u2": "Dr. Smith has 3 cats.",
    "spk2-u1": "The quick brown fox.",
}


def write_text(path, mapping):
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(mapping.items())), encoding="utf-8")
    return path


def read_ids(path):
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        utt, *ids = line.split()
        out[utt] = [int(i) for i in ids]
    return out


def test_help_exits_zero():
    proc = subprocess.run(
        [sys.executable, "-m", "ttsrl.bin.tokenize_text", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--token_type" in proc.stdout
    assert get_parser().parse_args(["--token_type", "char", "--input", "a", "--output", "b"]).cleaner == "en"


@pytest.mark.parametrize("token_type", ["char", "phn"])
def test_builds_list_then_reuses_it(tmp_path, token_type):
    text = write_text(tmp_path / "text", TEXT)
    out = tmp_path / "dump" / "train" / "text_tokens"
    tokens_txt = tmp_path / "token_list" / "tokens.txt"
    main(
        [
            "--token_type",
            token_type,
            "--input",
            str(text),
            "--output",
            str(out),
            "--write_token_list",
            str(tokens_txt),
        ]
    )
    ids = read_ids(out)
    assert list(ids) == sorted(TEXT)
    tok = build_tokenizer(token_type, token_list=read_token_list(tokens_txt))
    for utt, seq in ids.items():
        assert seq == tok.encode(TEXT[utt]) and UNK_ID not in seq

    dev = write_text(tmp_path / "dev_text", {"d1": "Hello, fox!"})
    main(
        [
            "--token_type",
            token_type,
            "--input",
            str(dev),
            "--output",
            str(tmp_path / "dev"),
            "--token_list",
            str(tokens_txt),
        ]
    )
    assert read_ids(tmp_path / "dev")["d1"] == tok.encode("Hello, fox!")


def test_bpe_trains_model(tmp_path):
    text = write_text(tmp_path / "text", TEXT)
    prefix = tmp_path / "bpe" / "bpe"
    main(["--token_type", "bpe", "--bpe_vocab_size", "40", "--bpemodel", str(prefix), "--input", str(text),
          "--output", str(tmp_path / "out"), "--write_token_list", str(tmp_path / "tokens.txt")])  # fmt: skip
    tok = build_tokenizer("bpe", bpemodel=prefix)
    assert tok.tokens == read_token_list(tmp_path / "tokens.txt")
    assert read_ids(tmp_path / "out")["spk1-u1"] == tok.encode(TEXT["spk1-u1"])


def test_unknown_symbols_are_logged(tmp_path, caplog):
    tokens_txt = tmp_path / "tokens.txt"
    main(["--token_type", "char", "--input", str(write_text(tmp_path / "text", {"u": "abc"})),
          "--output", str(tmp_path / "o1"), "--write_token_list", str(tokens_txt)])  # fmt: skip
    main(["--token_type", "char", "--input", str(write_text(tmp_path / "t2", {"u9": "abz"})),
          "--output", str(tmp_path / "o2"), "--token_list", str(tokens_txt)])  # fmt: skip
    assert read_ids(tmp_path / "o2")["u9"][-1] == UNK_ID
    assert any("u9" in r.getMessage() and "z" in r.getMessage() for r in caplog.records)


def test_failures_exit_nonzero(tmp_path):
    with pytest.raises(SystemExit) as e:  # missing input
        main(["--token_type", "char", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o")])
    assert e.value.code != 0
    with pytest.raises(SystemExit) as e:  # a text that cleans to nothing
        main(["--token_type", "char", "--input", str(write_text(tmp_path / "t", {"a": "ok", "b": "--"})),
              "--output", str(tmp_path / "o")])  # fmt: skip
    assert e.value.code != 0
    with pytest.raises(SystemExit) as e:  # bpe without a model
        main(["--token_type", "bpe", "--input", str(tmp_path / "t"), "--output", str(tmp_path / "o")])
    assert e.value.code != 0
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("token_type", ["phn", "bpe"])
def test_units_dir(tmp_path, token_type):
    """--units_dir writes tokens.txt, token_type (and bpe.model), what tokenize_speech --text_token_list reads."""
    from ttsrl.text.tokenizer import load_text_tokenizer

    text = write_text(tmp_path / "text", TEXT)
    units = tmp_path / "units"
    main(["--token_type", token_type, "--input", str(text), "--units_dir", str(units),
          *(["--bpe_vocab_size", "40"] if token_type == "bpe" else [])])  # fmt: skip
    assert (units / "token_type").read_text() == f"{token_type}\n"
    assert (units / "bpe.model").is_file() == (token_type == "bpe")
    tok = load_text_tokenizer(units)
    assert tok.token_type == token_type and UNK_ID not in tok.encode(TEXT["spk1-u2"])


def test_units_dir_names_an_unpronounceable_utterance(tmp_path, caplog):
    text = write_text(tmp_path / "text", {**TEXT, "spk2-u2": "Hello 日本"})
    with pytest.raises(SystemExit) as e:
        main(["--token_type", "phn", "--input", str(text), "--units_dir", str(tmp_path / "units")])
    assert e.value.code == 1 and not (tmp_path / "units").exists()
    assert any("utterance 'spk2-u2': cannot phonemize '日'" in r.getMessage() for r in caplog.records)
    with pytest.raises(SystemExit) as e:  # neither --output nor --units_dir
        main(["--token_type", "phn", "--input", str(text)])
    assert e.value.code == 2
