"""ttsrl.score.wer against an independent implementation of the Seed-TTS-Eval formula."""

import string

import pytest

from ttsrl.score.wer import (
    ErrorCounts,
    error_rates,
    phone_error_rates,
    phone_errors,
    token_errors,
    utterance_errors,
)

# (reference, hypothesis) pairs as an ASR judge would return them
PAIRS = [
    ("The quick brown fox.", "the quick brown fox"),
    ("Hello, world!", "hello word"),
    ("I would like a cup of coffee, please.", "i would like cup of coffee please please"),
    ("It's time to go home now.", "its time to go home"),
    ("She went to the store", "she went to this store to buy bread"),
    ("A", "b c d"),
    ("Short one", ""),
    ("Don't panic", "don't panic"),
]


def levenshtein(ref, hyp):
    """Plain dynamic-programming edit distance (substitution = insertion = deletion = 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def seedtts_normalize(text):
    """run_wer.py's English normalization, written out independently."""
    for mark in string.punctuation:
        if mark != "'":
            text = text.replace(mark, "")
    return text.lower().split()


def test_per_utterance_and_headline_match_the_seedtts_formula():
    per_utt, errors, words = [], 0, 0
    for ref, hyp in PAIRS:
        r, h = seedtts_normalize(ref), seedtts_normalize(hyp)
        d = levenshtein(r, h)
        per_utt.append(d / len(r))
        errors, words = errors + d, words + len(r)
        assert utterance_errors(ref, hyp).rate == pytest.approx(d / len(r))
    out = error_rates([r for r, _ in PAIRS], [h for _, h in PAIRS])
    assert out["wer"] == pytest.approx(100 * sum(per_utt) / len(per_utt))  # average_wer.py
    assert out["wer_corpus"] == pytest.approx(100 * errors / words)


def test_mean_of_utterances_differs_from_corpus_level():
    # a 1-word utterance with 1 error weighs as much as a 9-word one without errors
    refs = ["yes", "one two three four five six seven eight nine"]
    hyps = ["no", "one two three four five six seven eight nine"]
    out = error_rates(refs, hyps)
    assert out["wer"] == pytest.approx(50.0)  # (100 % + 0 %) / 2
    assert out["wer_corpus"] == pytest.approx(10.0)  # 1 error / 10 words


def test_counts():
    e = utterance_errors("a b c d", "a c d e")  # one deletion and one insertion beat three substitutions
    assert (e.hits, e.substitutions, e.deletions, e.insertions) == (3, 0, 1, 1)
    assert e.ref_len == 4 and e.errors == 2
    assert (ErrorCounts(1, 0, 0, 0) + ErrorCounts(0, 1, 1, 1)).errors == 3


def test_cer_over_characters():
    e = utterance_errors("Hello, world!", "hello word", unit="char")
    assert e.ref_len == 10 and e.errors == 1
    out = error_rates(["ab cd"], ["ab ce"])
    assert out["cer"] == pytest.approx(25.0)
    assert out["wer"] == pytest.approx(50.0)


def test_chinese_wer_is_over_characters():
    e = utterance_errors("今天天气很好。", "今天天汽很好", lang="zh")
    assert e.ref_len == 6 and e.substitutions == 1


def test_empty_reference_and_hypothesis():
    assert token_errors([], []).rate == 0.0
    assert token_errors([], ["a"]).rate == 1.0
    assert token_errors(["a", "b"], []).rate == 1.0
    assert utterance_errors("...", "").rate == 0.0


def test_phone_error_rate():
    ref, hyp = ["HH", "AH0", "L", "OW1"], ["HH", "L", "OW1", "W"]
    e = phone_errors(ref, hyp)
    assert e.errors == levenshtein(ref, hyp) == 2
    assert e.rate == pytest.approx(0.5)
    out = phone_error_rates([ref, ["a", "b"]], [hyp, ["a", "b"]])
    assert out["per"] == pytest.approx(25.0) and out["per_corpus"] == pytest.approx(100 * 2 / 6)
    with pytest.raises(ValueError, match="invalid token"):
        phone_errors(["a b"], ["a"])
    with pytest.raises(ValueError, match="references but"):
        phone_error_rates([ref], [])
