"""Text normalization for scoring, with the semantics of Seed-TTS-Eval's ``run_wer.py``.

Seed-TTS-Eval compares an ASR transcript with the text that was synthesized after:

1. deleting every punctuation mark of Python's ``string.punctuation`` and of the Chinese
   punctuation set (fullwidth ASCII variants, CJK brackets and marks, typographic quotes and
   dashes, the ellipsis, the ideographic space U+3000, the middle dot ...) **except the ASCII
   apostrophe** ``'``. Marks are deleted, not replaced by a space: ``"well-known"`` becomes
   ``"wellknown"`` and the typographic apostrophe of ``"don’t"`` goes (``"dont"``), exactly
   as the reference scorer does;
2. English (``lang="en"``): lowercasing; words are the whitespace-separated tokens;
3. Chinese (``lang="zh"``): no lowercasing; every non-space character is a token, so the
   "WER" of a Chinese test set is a character error rate. The transcript (not the
   reference) is first converted to simplified characters with ``zhconv``, as Seed-TTS-Eval
   does for Paraformer's output; ``zhconv`` is required for Chinese transcripts (the ``zh``
   extra: ``pip install -e .[zh]``, part of ``[all]``), and scoring one without it is an error
   rather than a silently different number.

Character tokens (:func:`char_tokens`) apply the Chinese rule to any language: every
non-space character of the normalized text. That is what ``cer`` means throughout ttsrl.

Usage::

    from ttsrl.score.normalize import char_tokens, normalize_text, word_tokens

    normalize_text("Hello, World! It's  fine.")     # "hello world it's fine"
    word_tokens("Hello, World!")                    # ["hello", "world"]
    word_tokens("你好，世界！", lang="zh")            # ["你", "好", "世", "界"]
    char_tokens("Hi, you.")                         # ["h", "i", "y", "o", "u"]
"""

from __future__ import annotations

import string

LANGS = ("en", "zh")

#: Chinese punctuation: the set Seed-TTS-Eval takes from ``zhon.hanzi.punctuation``.
ZH_PUNCTUATION = (
    # fullwidth ASCII variants
    "\uff02\uff03\uff04\uff05\uff06\uff07\uff08\uff09\uff0a\uff0b\uff0c\uff0d"
    "\uff0f\uff1a\uff1b\uff1c\uff1d\uff1e\uff20\uff3b\uff3c\uff3d\uff3e\uff3f"
    "\uff40\uff5b\uff5c\uff5d\uff5e\uff5f\uff60"
    # halfwidth CJK punctuation
    "\uff62\uff63\uff64"
    # ideographic space, ideographic comma, ditto mark
    "\u3000\u3001\u3003"
    # CJK angle, corner and other brackets
    "\u3008\u3009\u300a\u300b\u300c\u300d\u300e\u300f\u3010\u3011"
    "\u3014\u3015\u3016\u3017\u3018\u3019\u301a\u301b\u301c\u301d\u301e\u301f"
    # wavy dash, vertical ideographic iteration mark, ideographic half fill space
    "\u3030\u303e\u303f"
    # en and em dash, typographic quotes
    "\u2013\u2014\u2018\u2019\u201b\u201c\u201d\u201e\u201f"
    # ellipsis, hyphenation point, dashed low line, small comma and semicolon, middle dot
    "\u2026\u2027\ufe4f\ufe51\ufe54\u00b7"
    # stops: fullwidth full stop, exclamation and question marks, halfwidth and ideographic full stops
    "\uff0e\uff01\uff1f\uff61\u3002"
)

#: Every mark that is deleted (the ASCII apostrophe is kept).
PUNCTUATION = "".join(c for c in dict.fromkeys(string.punctuation + ZH_PUNCTUATION) if c != "'")
_DELETE = str.maketrans("", "", PUNCTUATION)

_zhconv = None


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r} for scoring (choose from {', '.join(LANGS)})")
    return lang


def strip_punctuation(text: str) -> str:
    """Delete every mark of :data:`PUNCTUATION` (everything but the ASCII apostrophe)."""
    return text.translate(_DELETE)


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese with ``zhconv`` (Seed-TTS-Eval converts the Chinese ASR
    transcript this way). Raises ImportError, with the install command, when it is missing."""
    global _zhconv
    if _zhconv is None:
        try:
            import warnings

            with warnings.catch_warnings():  # zhconv 1.4 imports the deprecated pkg_resources
                warnings.simplefilter("ignore", UserWarning)
                import zhconv
        except ImportError:
            raise ImportError(
                "scoring Chinese (lang zh) needs zhconv to convert transcripts to simplified characters, as "
                "Seed-TTS-Eval does: pip install -e '.[zh]' (or 'zhconv>=1.4')"
            ) from None
        _zhconv = zhconv
    return _zhconv.convert(text, "zh-cn")


def normalize_text(text: str, lang: str = "en", is_hypothesis: bool = False) -> str:
    """The normalized text: tokens (words for English, characters for Chinese) joined by
    single spaces. ``is_hypothesis`` applies the transcript-only step (Chinese: simplified)."""
    return " ".join(word_tokens(text, lang, is_hypothesis))


def word_tokens(text: str, lang: str = "en", is_hypothesis: bool = False) -> list[str]:
    """The tokens WER is computed over: English words, or Chinese characters."""
    check_lang(lang)
    if lang == "zh":
        if is_hypothesis:
            text = to_simplified(text)
        return [c for c in strip_punctuation(text) if not c.isspace()]
    return strip_punctuation(text).lower().split()


def char_tokens(text: str, lang: str = "en", is_hypothesis: bool = False) -> list[str]:
    """The tokens CER is computed over: every non-space character of the normalized text."""
    return [c for w in word_tokens(text, lang, is_hypothesis) for c in w]
