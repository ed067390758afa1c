"""ttsrl.score.normalize: Seed-TTS-Eval text normalization."""

import string

import pytest

from ttsrl.score.normalize import PUNCTUATION, ZH_PUNCTUATION, char_tokens, normalize_text, word_tokens


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello, World!", "hello world"),
        ("It's  a   test.", "it's a test"),
        ('Don\'t STOP; "believing"...', "don't stop believing"),
        ("well-known e-mail", "wellknown email"),  # marks are deleted, not replaced by a space
        ("don\u2019t", "dont"),  # only the ASCII apostrophe survives
        ("  leading and trailing  ", "leading and trailing"),
        ("?!...", ""),
        ("3.5% of $10", "35 of 10"),
    ],
)
def test_english(text, expected):
    assert normalize_text(text, "en") == expected


def test_chinese_splits_characters_and_drops_punctuation():
    assert word_tokens("你好，世界！", "zh") == ["你", "好", "世", "界"]
    assert normalize_text("“我们”　走吧。", "zh") == "我 们 走 吧"  # ideographic space and quotes go
    # Seed-TTS-Eval splits everything into characters and does not lowercase in zh mode
    assert word_tokens("AI 模型", "zh") == ["A", "I", "模", "型"]


def test_char_tokens_drop_spaces():
    assert char_tokens("Hi, you.") == ["h", "i", "y", "o", "u"]
    assert char_tokens("it's") == ["i", "t", "'", "s"]
    assert char_tokens("你好", "zh") == ["你", "好"]


def test_punctuation_sets():
    assert "'" not in PUNCTUATION
    assert set(string.punctuation) - {"'"} <= set(PUNCTUATION)
    for mark in "，。！？、；：「」『』（）《》…—":
        assert mark in ZH_PUNCTUATION


def test_unknown_language():
    with pytest.raises(ValueError, match="unknown language"):
        word_tokens("hi", "fr")
