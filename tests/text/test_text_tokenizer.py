"""ttsrl.text.tokenizer: id convention, round trips, token-list files, unknown symbols."""

import pickle
import random
import time

import pytest

from ttsrl.text.normalize import normalize_text
from ttsrl.text.tokenizer import (
    BLANK,
    BLANK_ID,
    SOS_EOS,
    SPACE,
    UNK,
    UNK_ID,
    CharTokenizer,
    PhonemeTokenizer,
    Tokenizer,
    TokenListError,
    UnpronounceableError,
    build_token_list,
    build_tokenizer,
    copy_text_units,
    encode_texts,
    load_text_tokenizer,
    read_token_list,
    train_bpe,
    write_text_units,
    write_token_list,
)

TEXTS = [
    "Hello, world! How are you today?",
    "Dr. Smith paid $3.50 on May 21st, 1999.",
    "It's a quick test; really.",
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
]


def check_frame(tokens):
    assert tokens[BLANK_ID] == BLANK and tokens[UNK_ID] == UNK and tokens[-1] == SOS_EOS
    assert len(set(tokens)) == len(tokens)


# -- char ----------------------------------------------------------------------------
def test_char_token_list_and_round_trip():
    tokens = build_token_list("char", TEXTS)
    check_frame(tokens)
    assert SPACE in tokens and "a" in tokens and " " not in tokens
    tok = build_tokenizer("char", token_list=tokens)
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == len(tokens) and tok.sos_eos_id == len(tokens) - 1
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids and BLANK_ID not in ids and UNK_ID not in ids and tok.sos_eos_id not in ids
        assert tok.decode(ids) == normalize_text(text)


def test_char_frequency_order():
    tokens = build_token_list("char", ["aaa bb c"], cleaner=None)
    # most frequent first, ties in code point order ("<" < "b")
    assert tokens == [BLANK, UNK, "a", SPACE, "b", "c", SOS_EOS]


def test_char_without_cleaner_keeps_text():
    tokens = build_token_list("char", ["AbC 1"], cleaner=None)
    tok = CharTokenizer(tokens, cleaner=None)
    assert tok.decode(tok.encode("AbC 1")) == "AbC 1"


def test_decode_skips_blank_and_sos_eos_and_checks_range():
    tok = build_tokenizer("char", token_list=build_token_list("char", ["ab"]))
    a, b = tok.encode("ab")
    assert tok.decode([BLANK_ID, tok.sos_eos_id, a, BLANK_ID, b, tok.sos_eos_id]) == "ab"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])


def test_unknown_symbols_are_reported():
    tok = build_tokenizer("char", token_list=build_token_list("char", ["abc abc"]))
    (ids, unknown), (ids2, unknown2) = tok.encode_with_unknown(["abz", "cab"])
    assert ids[-1] == UNK_ID and unknown == ["z"]
    assert UNK_ID not in ids2 and unknown2 == []
    assert tok.unknown_symbols == {"z"}
    assert tok.decode(ids) == "ab" + UNK

    ids_by_utt, unk_by_utt = encode_texts(tok, {"u1": "abc", "u2": "zzx c"})
    assert set(ids_by_utt) == {"u1", "u2"} and unk_by_utt == {"u2": ["z", "x"]}


def test_encode_texts_names_empty_utterance():
    tok = build_tokenizer("char", token_list=build_token_list("char", ["abc"]))
    with pytest.raises(ValueError, match="'u2'"):
        encode_texts(tok, {"u1": "abc", "u2": "((--))"})


def test_encode_needs_token_list():
    with pytest.raises(TokenListError, match="no token list"):
        build_tokenizer("char").encode("abc")


# -- token-list files ----------------------------------------------------------------
def test_token_list_file_round_trip(tmp_path):
    tokens = build_token_list("char", TEXTS)
    path = tmp_path / "sub" / "tokens.txt"
    write_token_list(path, tokens)
    assert path.read_text(encoding="utf-8").splitlines() == tokens
    assert read_token_list(path) == tokens
    tok = build_tokenizer("char", token_list=str(path))
    assert tok.tokens == tokens


@pytest.mark.parametrize(
    "lines, match",
    [
        (["<unk>", "<blank>", "a", "<sos/eos>"], "must start"),
        (["<blank>", "<unk>", "a"], "must start"),
        (["<blank>", "<unk>", "a", "a", "<sos/eos>"], "twice"),
        (["<blank>", "<unk>", "a b", "<sos/eos>"], "whitespace"),
    ],
)
def test_bad_token_list_files(tmp_path, lines, match):
    path = tmp_path / "tokens.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(TokenListError, match=match):
        read_token_list(path)


def test_missing_token_list_file(tmp_path):
    with pytest.raises(TokenListError, match="not found"):
        read_token_list(tmp_path / "nope.txt")


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown token type"):
        build_tokenizer("word")


# -- phonemes ------------------------------------------------------------------------
def espeak_plain(texts):
    """Reference: espeak-ng output without phone separators (what decode returns)."""
    from phonemizer.backend import EspeakBackend
    from phonemizer.separator import Separator

    backend = EspeakBackend(
        "en-us", preserve_punctuation=True, with_stress=True, language_switch="remove-flags"
    )
    return backend.phonemize(texts, separator=Separator(phone="", word=" ", syllable=""), strip=True)


def test_phoneme_round_trip_is_to_phones():
    tokens = build_token_list("phn", TEXTS)
    check_frame(tokens)
    assert "ˈ" in tokens and SPACE in tokens and "," in tokens
    tok = build_tokenizer("phn", token_list=tokens)
    cleaned = [normalize_text(t) for t in TEXTS]
    for text, ref in zip(TEXTS, espeak_plain(cleaned), strict=True):
        ids = tok.encode(text)
        assert UNK_ID not in ids
        assert tok.decode(ids) == ref
    toks = tok.text2tokens("hello world")
    assert toks[:5] == ["h", "ə", "l", "ˈ", "oʊ"] and SPACE in toks


def test_phoneme_batch_cache_and_empty():
    tok = PhonemeTokenizer(build_token_list("phn", TEXTS))
    batch = tok.texts2tokens(["", "hello", "--", "hello"])
    assert batch[0] == [] and batch[2] == [] and batch[1] == batch[3] and batch[1]
    # a second call is served from the cache and equal
    assert tok.texts2tokens(["hello"]) == [batch[1]]
    # the espeak backend is not pickled (DataLoader workers rebuild it)
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode("hello") == tok.encode("hello")


def test_phoneme_ids_are_stable_through_a_units_folder(tmp_path):
    """encode -> decode gives the phone string; a tokenizer loaded from the written units gives the same ids."""
    tok = build_tokenizer("phn", token_list=build_token_list("phn", TEXTS))
    write_text_units(tmp_path / "units", tok)
    assert (tmp_path / "units" / "token_type").read_text() == "phn\n"
    again = load_text_tokenizer(tmp_path / "units")
    assert isinstance(again, PhonemeTokenizer) and again.tokens == tok.tokens
    for text, ref in zip(TEXTS, espeak_plain([normalize_text(t) for t in TEXTS]), strict=True):
        ids = tok.encode(text)
        assert again.encode(text) == ids and again.decode(ids) == ref
    # ids are positions in the list: the same phones always get the same ids
    assert tok.encode("hello") == [tok.tokens.index(p) for p in tok.text2tokens("hello")]


@pytest.mark.parametrize("text, symbol", [("hello 日本 world", "日"), ("x привет", "п"), ("straße", "ß")])
def test_phoneme_tokenizer_names_what_it_cannot_read(text, symbol):
    tok = PhonemeTokenizer(build_token_list("phn", TEXTS))
    with pytest.raises(UnpronounceableError) as e:
        tok.encode(text)
    assert e.value.symbol == symbol and e.value.text == text
    assert repr(symbol) in str(e.value) and repr(text) in str(e.value) and "cleaner drops it" in str(e.value)
    with pytest.raises(UnpronounceableError, match="utterance 'u2': cannot phonemize"):
        encode_texts(tok, {"u1": "hello", "u2": text})
    with pytest.raises(UnpronounceableError, match="utterance 'u2'"):
        build_token_list("phn", {"u1": "hello", "u2": text})
    with pytest.raises(UnpronounceableError, match="script's name"):  # espeak would say "chinese letter"
        PhonemeTokenizer(cleaner=None).text2tokens("hi 日")


def test_phoneme_tokenizer_reads_digits_accents_and_drops_symbols():
    tok = PhonemeTokenizer(build_token_list("phn", TEXTS))
    assert tok.text2tokens("room 5") == tok.text2tokens("room five")  # the cleaner reads numbers out
    assert tok.text2tokens("café") == tok.text2tokens("cafe")
    assert tok.text2tokens("hi 😀 there") == tok.text2tokens("hi there")  # a symbol, as for char units


def test_text_units_folders(tmp_path):
    char = build_tokenizer("char", token_list=build_token_list("char", TEXTS))
    write_text_units(tmp_path / "char", char)
    assert load_text_tokenizer(tmp_path / "char").tokens == char.tokens
    (tmp_path / "char" / "token_type").unlink()  # an older folder: tokens.txt alone is char
    assert isinstance(load_text_tokenizer(tmp_path / "char"), CharTokenizer)
    model = train_bpe(TEXTS * 5, tmp_path / "sp" / "bpe", vocab_size=40)
    write_text_units(tmp_path / "bpe", build_tokenizer("bpe", bpemodel=model))
    assert copy_text_units(tmp_path / "bpe", tmp_path / "lm") == ["tokens.txt", "token_type", "bpe.model"]
    bpe = load_text_tokenizer(tmp_path / "lm")
    assert bpe.token_type == "bpe" and bpe.decode(bpe.encode(TEXTS[0])) == normalize_text(TEXTS[0])
    (tmp_path / "lm" / "token_type").unlink()  # an older folder with a bpe.model: bpe
    assert load_text_tokenizer(tmp_path / "lm").token_type == "bpe"
    (tmp_path / "lm" / "token_type").write_text("word\n")
    with pytest.raises(TokenListError, match="unknown token type 'word'"):
        load_text_tokenizer(tmp_path / "lm")


def test_phoneme_corpus_speed():
    """4,000 sentences (normalization + espeak-ng) run in seconds, well under a minute."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog while seven happy singers read 21 old books".split()
    corpus = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(4000)]
    start = time.perf_counter()
    tokens = build_token_list("phn", corpus)
    elapsed = time.perf_counter() - start
    assert len(tokens) > 20
    assert elapsed < 20, f"phonemizing 4000 sentences took {elapsed:.1f} s"


# -- BPE -----------------------------------------------------------------------------
def test_bpe_train_and_round_trip(tmp_path):
    prefix = tmp_path / "bpe" / "bpe"
    texts = [t.replace("z", "s") for t in TEXTS]  # no "z": it must come out as <unk>
    model = train_bpe(texts * 10, prefix, vocab_size=60)
    assert model == str(prefix) + ".model"
    assert (tmp_path / "bpe" / "bpe.vocab").is_file()
    tokens = build_token_list("bpe", bpemodel=prefix)
    check_frame(tokens)
    assert "<s>" not in tokens and "</s>" not in tokens
    for bpemodel in (prefix, model):  # prefix or prefix.model
        tok = build_tokenizer("bpe", bpemodel=bpemodel)
        assert tok.tokens == tokens
        for text in texts:
            ids = tok.encode(text)
            assert UNK_ID not in ids
            assert tok.decode(ids) == normalize_text(text)
    ((ids, unknown),) = tok.encode_with_unknown(["zebra"])
    assert UNK_ID in ids and unknown == ["z"]
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode(TEXTS[0]) == tok.encode(TEXTS[0])


def test_bpe_needs_model(tmp_path):
    with pytest.raises(ValueError, match="bpemodel"):
        build_tokenizer("bpe")
    with pytest.raises(FileNotFoundError):
        build_tokenizer("bpe", bpemodel=tmp_path / "missing")
