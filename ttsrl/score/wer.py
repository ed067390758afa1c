"""Word, character and phone error rates (jiwer alignments), Seed-TTS-Eval style.

Per utterance, ``rate = (S + D + I) / N`` with N the number of reference tokens after
:mod:`ttsrl.score.normalize` (an empty reference scores 0 when the hypothesis is empty too,
else 1). Over a test set two numbers are reported, both in percent:

- ``wer``: the **mean of the per-utterance rates** x 100, Seed-TTS-Eval's headline
  (``average_wer.py``); every utterance weighs the same, a short one with one error can
  dominate;
- ``wer_corpus``: total errors / total reference tokens x 100, the classic corpus WER.

The same pair exists for characters (``cer``, ``cer_corpus``). Phone error rates work on
phone lists given by the caller (:func:`phone_errors`).

Parity with Seed-TTS-Eval's ``run_wer.py`` (``process_one``, jiwer's default transforms):
the per-utterance WER is the same (``tests/score/test_score_wer.py`` runs its formula on the
same pairs), except in these documented cases:

1. **Whitespace other than the ASCII space.** jiwer splits words on ``" "`` only, so in
   Seed-TTS-Eval ``"hello\\tworld"`` or ``"hello\\u00a0world"`` (no-break space) is *one* word and
   a perfect transcript ``"hello world"`` costs 2 errors (a substitution and an insertion).
   ttsrl splits on every Unicode whitespace and counts 0: the separator is a formatting
   artefact, not something a TTS model can get right or wrong. (Chinese is unaffected: both
   split into characters and drop whitespace.) Data dirs written by ttsrl hold no such
   whitespace in ``text`` anyway (Kaldi's rules, :func:`ttsrl.data.datadir.kaldi_text`).
2. **A reference that is empty after normalization** (all punctuation, e.g. ``"..."``).
   Seed-TTS-Eval's jiwer (``compute_measures``, jiwer <= 3.x) raises and the whole run stops;
   ttsrl scores the utterance 0 when the transcript is empty too and 1 (100 %) otherwise, so
   one bad test item does not lose a test set (:attr:`ErrorCounts.rate`).
3. **Traditional characters in a Chinese transcript**: both convert them with ``zhconv``;
   ttsrl refuses to score Chinese without it instead of scoring unconverted text
   (:func:`ttsrl.score.normalize.to_simplified`).

Usage::

    from ttsrl.score.wer import error_rates, utterance_errors

    e = utterance_errors("the cat sat", "the cat sat down")   # ErrorCounts(hits=3, ins=1 ...)
    e.rate                                                   # 0.333...
    s = error_rates(refs, hyps, lang="en")                   # {"wer": .., "wer_corpus": .., "cer": ..}
    phone_errors(["HH", "AH", "L", "OW"], ["HH", "L", "OW"]).rate   # 0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from ttsrl.score.normalize import char_tokens, word_tokens

_KEEP = jiwer.Compose([jiwer.ReduceToListOfListOfWords()])  # tokens are already normalized


@dataclass(frozen=True)
class ErrorCounts:
    """Alignment counts of one hypothesis against its reference."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def ref_len(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def rate(self) -> float:
        """(S + D + I) / N; for an empty reference 0.0 without errors, else 1.0."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.ref_len

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


def token_errors(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    """Levenshtein alignment counts of two token sequences (tokens must not hold whitespace)."""
    for tok in (*ref, *hyp):
        if not tok or any(c.isspace() for c in tok):
            raise ValueError(f"invalid token {tok!r}: tokens must be non-empty and hold no whitespace")
    if not ref and not hyp:
        return ErrorCounts()
    if not ref:
        return ErrorCounts(insertions=len(hyp))
    if not hyp:
        return ErrorCounts(deletions=len(ref))
    out = jiwer.process_words(
        " ".join(ref), " ".join(hyp), reference_transform=_KEEP, hypothesis_transform=_KEEP
    )
    return ErrorCounts(out.hits, out.substitutions, out.deletions, out.insertions)


def utterance_errors(ref: str, hyp: str, lang: str = "en", unit: str = "word") -> ErrorCounts:
    """Counts of one (reference text, transcript) pair after Seed-TTS-Eval normalization.

    ``unit`` is ``"word"`` (words for English, characters for Chinese, as Seed-TTS-Eval's
    WER) or ``"char"`` (non-space characters).
    """
    if unit == "word":
        tokens = word_tokens
    elif unit == "char":
        tokens = char_tokens
    else:
        raise ValueError(f"unknown unit {unit!r} (word or char)")
    return token_errors(tokens(ref, lang), tokens(hyp, lang, is_hypothesis=True))


def phone_errors(ref_phones: Sequence[str], hyp_phones: Sequence[str]) -> ErrorCounts:
    """Phone error counts of two phone lists (``.rate`` is the PER of the pair)."""
    return token_errors(list(ref_phones), list(hyp_phones))


def summarize(counts: Sequence[ErrorCounts], name: str) -> dict[str, float]:
    """``{name: mean per-utterance rate x100, name_corpus: corpus rate x100}``; empty -> {}."""
    if not counts:
        return {}
    total = sum(counts, ErrorCounts())
    return {
        name: 100.0 * sum(c.rate for c in counts) / len(counts),
        f"{name}_corpus": 100.0 * total.rate,
    }


def error_rates(refs: Sequence[str], hyps: Sequence[str], lang: str = "en") -> dict[str, float]:
    """WER and CER of parallel lists: ``wer, wer_corpus, cer, cer_corpus`` in percent."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    words = [utterance_errors(r, h, lang, "word") for r, h in zip(refs, hyps, strict=True)]
    chars = [utterance_errors(r, h, lang, "char") for r, h in zip(refs, hyps, strict=True)]
    return {**summarize(words, "wer"), **summarize(chars, "cer")}


def phone_error_rates(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> dict[str, float]:
    """PER of parallel lists of phone lists: ``per`` (mean per utterance) and ``per_corpus``."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return summarize([phone_errors(r, h) for r, h in zip(refs, hyps, strict=True)], "per")
