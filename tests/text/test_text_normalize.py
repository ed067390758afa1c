"""ttsrl.text.normalize: numbers, ordinals, years, abbreviations, punctuation."""

import pytest

from ttsrl.text.normalize import normalize_text, number_to_words, ordinal_to_words, year_to_words


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (115, "one hundred fifteen"),
        (1000, "one thousand"),
        (1_234_567, "one million two hundred thirty four thousand five hundred sixty seven"),
        (2_000_000_001, "two billion one"),
        (-5, "minus five"),
    ],
)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize(
    "n, words",
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"), (21, "twenty first"),
     (100, "one hundredth"), (111, "one hundred eleventh")],
)  # fmt: skip
def test_ordinal_to_words(n, words):
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize(
    "n, words",
    [(1995, "nineteen ninety five"), (1905, "nineteen oh five"), (1900, "nineteen hundred"), (2000, "two thousand"),
     (2008, "two thousand eight"), (2019, "twenty nineteen")],
)  # fmt: skip
def test_year_to_words(n, words):
    assert year_to_words(n) == words


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Hello,   WORLD!", "hello, world!"),
        ("I have 3 cats and 21 dogs.", "i have three cats and twenty one dogs."),
        ("The 1st, 2nd, 3rd and 21st.", "the first, second, third and twenty first."),
        ("Born in 1995, moved in 2008.", "born in nineteen ninety five, moved in two thousand eight."),
        ("In the 1990s.", "in the nineteen nineties."),
        ("Pi is 3.14.", "pi is three point one four."),
        (
            "It costs $3.50 or 1,200 euros.",
            "it costs three dollars fifty cents or one thousand two hundred euros.",
        ),
        ("50% off", "fifty percent off"),
        ("Mr. and Mrs. Smith met Dr. Who.", "mister and misses smith met doctor who."),
        ("St. Louis is on Main St.", "saint louis is on main street."),
        ("No. 5 and etc.", "number five and et cetera."),
        ("at 3:05", "at three oh five"),
        ("Caf\u00e9 na\u00efve", "cafe naive"),
        ("Don\u2019t \u201cquote\u201d me", "don't quote me"),
        ("'yes' he said", "yes he said"),
        ("well-known (really) -- ok; fine", "well known, really, ok, fine"),
        ("What?! Really...", "what? really."),
        ("  \t spaced\n out  ", "spaced out"),
        ("...leading punctuation", "leading punctuation"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_without_punctuation():
    assert normalize_text("Hello, world! It's 5.", keep_punctuation=False) == "hello world it's five"


def test_normalize_is_idempotent():
    for raw in [
        "Dr. Smith paid $3.50 on May 21st, 1999!",
        "St. Louis, 5th Ave.",
        "e.g. this, i.e. that",
        "0042 & co.",
    ]:
        once = normalize_text(raw)
        assert normalize_text(once) == once


def test_normalize_output_alphabet():
    out = normalize_text("Ünïcode ½ ©2024 <tag> #1 a@b.c \u4e2d\u6587 ok")
    assert set(out) <= set("abcdefghijklmnopqrstuvwxyz' .,?!")


def test_normalize_unknown_language():
    with pytest.raises(ValueError, match="not supported"):
        normalize_text("hallo", lang="de")


def test_dropped_chars_names_the_letters_normalization_removes():
    from ttsrl.text.normalize import dropped_chars

    assert normalize_text("hello 你好 world") == "hello world"
    assert dropped_chars("hello 你好 world") == ["你", "好"]
    assert dropped_chars("Ελλάδα, 日本 and 日") == ["ε", "λ", "α", "δ", "日", "本"]  # lowercased, in order, once
    # what normalization spells out or drops on purpose is not reported
    assert dropped_chars('Dr. Smith paid $3.50 for "café" *now* & more!') == []
