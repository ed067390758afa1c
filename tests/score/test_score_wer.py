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


def seedtts_process_one(hypo, truth, lang):
    """run_wer.py's process_one (Seed-TTS-Eval), line by line, with the jiwer it calls: the
    reference's per-utterance WER. Its transcripts of Chinese go through zhconv first (run_asr)."""
    import jiwer
    import zhconv

    # zhon.hanzi.punctuation of the reference is ZH_PUNCTUATION (checked in test_score_normalize)
    from ttsrl.score.normalize import ZH_PUNCTUATION

    if lang == "zh":
        hypo = zhconv.convert(hypo, "zh-cn")
    for x in string.punctuation + ZH_PUNCTUATION:
        if x == "'":
            continue
        truth = truth.replace(x, "")
        hypo = hypo.replace(x, "")
    truth = truth.replace("  ", " ")
    hypo = hypo.replace("  ", " ")
    if lang == "zh":
        truth = " ".join([x for x in truth])
        hypo = " ".join([x for x in hypo])
    else:
        truth = truth.lower()
        hypo = hypo.lower()
    # compute_measures(truth, hypo)["wer"]: run_wer.py imports compute_measures, which exists up to jiwer 3.x;
    # those versions raise on a reference that is empty after their transforms (jiwer 4 returns a number)
    if not jiwer.wer_default(truth)[0]:
        raise ValueError("one or more references are empty strings")
    return jiwer.process_words(truth, hypo).wer


PARITY = [  # (lang, reference text, transcript)
    *(("en", r, h) for r, h in PAIRS),
    ("en", "  Several   spaces , and a comma ", "several spaces and a coma"),
    ("en", "Well-known e-mail.", "well known email"),
    ("en", "Don\u2019t \u201cquote\u201d me", "dont quote me"),
    ("en", "UPPER lower", "upper lower"),
    ("en", "trailing space ", " trailing space"),
    ("zh", "今天天气很好。", "今天天汽很好"),
    ("zh", "“我们”　走吧！", "我們走吧"),  # ideographic space, quotes; a traditional character in the transcript
    ("zh", "AI 模型，很强。", "ai模型很强"),  # no lowercasing in zh
    ("zh", "你好\t世界", "你好世界"),  # whitespace inside Chinese: dropped by both
]


@pytest.mark.parametrize("lang, ref, hyp", PARITY)
def test_per_utterance_wer_matches_seedtts_eval(lang, ref, hyp):
    assert utterance_errors(ref, hyp, lang).rate == pytest.approx(seedtts_process_one(hyp, ref, lang))


@pytest.mark.parametrize("sep", ["\t", "\u00a0"])
def test_documented_difference_other_whitespace(sep):
    # wer.py, difference 1: jiwer splits on " " only, so "hello<sep>world" is one reference word
    # and a perfect transcript costs Seed-TTS-Eval 2 errors (1 substitution, 1 insertion) / 1 word
    ref, hyp = f"hello{sep}world", "hello world"
    assert seedtts_process_one(hyp, ref, "en") == pytest.approx(2.0)
    e = utterance_errors(ref, hyp)
    assert e.errors == 0 and e.rate == 0.0 and e.ref_len == 2


def test_documented_difference_all_punctuation_reference():
    # wer.py, difference 2: Seed-TTS-Eval raises on an empty normalized reference; ttsrl scores 0 or 1
    with pytest.raises(ValueError):
        seedtts_process_one("", "...!?", "en")
    with pytest.raises(ValueError):
        seedtts_process_one("something", "\u3002\uff01", "zh")
    assert utterance_errors("...!?", "").rate == 0.0
    assert utterance_errors("...!?", "something").rate == 1.0
    assert utterance_errors("\u3002\uff01", "something", "zh").rate == 1.0


def test_chinese_needs_zhconv(monkeypatch):
    # wer.py, difference 3: no silent scoring of unconverted transcripts
    import builtins

    from ttsrl.score import normalize

    real_import = builtins.__import__

    def no_zhconv(name, *args, **kwargs):
        if name == "zhconv":
            raise ImportError("no zhconv")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(normalize, "_zhconv", None)
    monkeypatch.setattr(builtins, "__import__", no_zhconv)
    with pytest.raises(ImportError, match=r"pip install -e '.\[zh\]'"):
        utterance_errors("你好", "你好", lang="zh")
    assert utterance_errors("hello", "hello").rate == 0.0  # English does not need it


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
