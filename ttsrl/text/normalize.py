"""English text normalization for TTS input.

``normalize_text`` turns written English into the spoken form a tokenizer sees:

1. Unicode NFKC; typographic quotes and dashes become ASCII; accents are stripped
   (``café`` -> ``cafe``), so a character inventory built on one set covers another.
2. Abbreviations: ``Mr.`` -> mister, ``Dr.`` -> doctor, ``St.`` -> saint before a
   capitalized name and street otherwise, ``No. 5`` -> number five, ``e.g.``, ``etc.`` ...
3. Numbers: money (``$3.50`` -> three dollars fifty cents), percent, ordinals
   (``21st`` -> twenty first), years (``1995`` -> nineteen ninety five, ``1990s`` ->
   nineteen nineties), decimals (``3.14`` -> three point one four), integers with or
   without thousands separators (``1,200`` -> one thousand two hundred). A bare
   four-digit number from 1100 to 2099 is read as a year (``1500`` -> fifteen hundred).
4. Lowercase; ``&`` -> and; ``; : — ( )`` become commas, other symbols are dropped.
   Apostrophes are kept between letters (``don't``, ``doctor's``), dropped elsewhere.
5. Punctuation ``. , ? !`` is kept (``keep_punctuation=True``) attached to the word
   before it, with runs collapsed (``?!`` -> ``?``); whitespace is collapsed.

The function is pure and idempotent: normalizing its output returns it unchanged.

Usage::

    from ttsrl.text.normalize import normalize_text

    normalize_text("Dr. Smith paid $3.50 on May 21st, 1999!")
    # 'doctor smith paid three dollars fifty cents on may twenty first, nineteen ninety nine!'
    normalize_text("Hello -- world...", keep_punctuation=False)   # 'hello world'
"""

from __future__ import annotations

import re
import unicodedata

SUPPORTED_LANGS = ("en",)

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_MAX_INT = 10**15  # beyond this numbers are read digit by digit

_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """Cardinal reading of an integer, US style without "and": 115 -> one hundred fifteen."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= _MAX_INT:
        return digits_to_words(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_to_words(rest) if rest else "")
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return number_to_words(head) + " " + name + (" " + number_to_words(rest) if rest else "")
    raise AssertionError("unreachable")


def ordinal_to_words(n: int) -> str:
    """Ordinal reading: 21 -> twenty first, 100 -> one hundredth, 12 -> twelfth."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_to_words(n: int) -> str:
    """Year reading: 1995 -> nineteen ninety five, 1905 -> nineteen oh five,
    1900 -> nineteen hundred, 2000 -> two thousand, 2008 -> two thousand eight,
    2019 -> twenty nineteen."""
    if n < 1000 or n > 9999:
        return number_to_words(n)
    if 2000 <= n < 2010:
        return number_to_words(n)
    head, tail = divmod(n, 100)
    if tail == 0:
        return number_to_words(head) + " hundred"
    if tail < 10:
        return number_to_words(head) + " oh " + _ONES[tail]
    return number_to_words(head) + " " + number_to_words(tail)


def digits_to_words(digits: str) -> str:
    """Digit-by-digit reading: "0142" -> zero one four two."""
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def _plural(words: str) -> str:
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return (head + " " + last) if head else last


# -- unicode -------------------------------------------------------------------------
_CHAR_MAP = str.maketrans(
    {
        "\u2018": "'",  # left single quote
        "\u2019": "'",  # right single quote / typographic apostrophe
        "\u02bc": "'",  # modifier letter apostrophe
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": " - ",  # en dash
        "\u2014": " - ",  # em dash
        "\u2026": "...",
        "\u00a0": " ",
    }
)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


# -- abbreviations -------------------------------------------------------------------
# (pattern without the trailing period, expansion); matched case-insensitively as a
# whole word followed by "."
_ABBREVIATIONS = [
    ("mrs", "misses"),
    ("mr", "mister"),
    ("ms", "miz"),
    ("dr", "doctor"),
    ("prof", "professor"),
    ("jr", "junior"),
    ("sr", "senior"),
    ("gen", "general"),
    ("gov", "governor"),
    ("capt", "captain"),
    ("lt", "lieutenant"),
    ("col", "colonel"),
    ("maj", "major"),
    ("sgt", "sergeant"),
    ("rev", "reverend"),
    ("hon", "honorable"),
    ("ft", "fort"),
    ("mt", "mount"),
    ("ave", "avenue"),
    ("blvd", "boulevard"),
    ("rd", "road"),
    ("co", "company"),
    ("corp", "corporation"),
    ("inc", "incorporated"),
    ("ltd", "limited"),
    ("dept", "department"),
    ("approx", "approximately"),
    ("vs", "versus"),
    ("etc", "et cetera"),
]
_ABBREV_RE = re.compile(r"\b(" + "|".join(a for a, _ in _ABBREVIATIONS) + r")\.(\s*$)?", re.IGNORECASE)
_ABBREV_MAP = dict(_ABBREVIATIONS)
_SAINT_STREET_RE = re.compile(r"\b(st)\.(\s+(?=(?-i:[A-Z])))?(\s*$)?", re.IGNORECASE)
_NUMBER_ABBREV_RE = re.compile(r"\bno\.\s*(?=\d)", re.IGNORECASE)
_LATIN_RE = [
    (re.compile(r"\be\.\s?g\.", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.\s?e\.", re.IGNORECASE), "that is"),
    (re.compile(r"\ba\.\s?m\.(?=\s|$)", re.IGNORECASE), "a m"),
    (re.compile(r"\bp\.\s?m\.(?=\s|$)", re.IGNORECASE), "p m"),
]


def _expand_abbreviations(text: str) -> str:
    for pattern, words in _LATIN_RE:
        text = pattern.sub(words, text)
    text = _NUMBER_ABBREV_RE.sub("number ", text)

    def saint_or_street(m: re.Match) -> str:
        if m.group(2):  # followed by a capitalized word: St. Louis
            return "saint "
        return "street" + ("." if m.group(3) is not None else "")

    text = _SAINT_STREET_RE.sub(saint_or_street, text)
    # an abbreviation that ends the text also ends the sentence: keep its period
    return _ABBREV_RE.sub(
        lambda m: _ABBREV_MAP[m.group(1).lower()] + ("." if m.group(2) is not None else ""), text
    )


# -- numbers -------------------------------------------------------------------------
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents")}  # fmt: skip
_MONEY_RE = re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?!\d)")
_THOUSANDS_RE = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?:\.(\d+))?(?![\d,]*\d)")
_PERCENT_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?%")
_DECIMAL_RE = re.compile(r"(\d*)\.(\d+)")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_YEARS_RE = re.compile(r"\b(\d{4})s\b")
_INT_RE = re.compile(r"\d+")
_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_MINUS_RE = re.compile(r"(?<![\w.-])-(?=\d)")


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m.group(1)]
    units = int(m.group(2).replace(",", ""))
    cents = int(m.group(3).ljust(2, "0")) if m.group(3) else 0
    parts = []
    if units or not cents:
        parts.append(f"{number_to_words(units)} {one if units == 1 else many}")
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " " + " ".join(parts) + " "


def _decimal_words(integer: str, fraction: str) -> str:
    return (number_to_words(int(integer)) + " " if integer else "") + "point " + digits_to_words(fraction)


def _thousands(m: re.Match) -> str:
    n = int(m.group(1).replace(",", ""))
    return " " + (_decimal_words(str(n), m.group(2)) if m.group(2) else number_to_words(n)) + " "


def _integer(m: re.Match) -> str:
    digits = m.group(0)
    n = int(digits)
    if len(digits) > 1 and digits.startswith("0"):
        words = digits_to_words(digits)  # "007", zip codes
    elif len(digits) == 4 and 1100 <= n < 2100:
        words = year_to_words(n)
    else:
        words = number_to_words(n)
    return " " + words + " "


def _time(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours > 24 or minutes > 59:
        return m.group(0)
    words = number_to_words(hours)
    if minutes:
        words += (" oh " if minutes < 10 else " ") + number_to_words(minutes)
    return " " + words + " "


def _expand_numbers(text: str) -> str:
    text = _MONEY_RE.sub(_money, text)
    text = _TIME_RE.sub(_time, text)
    text = _MINUS_RE.sub(" minus ", text)
    text = _PERCENT_RE.sub(lambda m: m.group(1) + " percent", text)
    text = _THOUSANDS_RE.sub(_thousands, text)  # never a year: 1,200 -> one thousand two hundred
    text = _ORDINAL_RE.sub(lambda m: " " + ordinal_to_words(int(m.group(1))) + " ", text)
    text = _YEARS_RE.sub(lambda m: " " + _plural(year_to_words(int(m.group(1)))) + " ", text)
    text = _DECIMAL_RE.sub(lambda m: " " + _decimal_words(m.group(1), m.group(2)) + " ", text)
    return _INT_RE.sub(_integer, text)


# -- symbols and punctuation ---------------------------------------------------------
_SYMBOLS = [("&", " and "), ("+", " plus "), ("=", " equals "), ("@", " at "), ("#", " number ")]
_PAUSE_RE = re.compile(r"\s-+\s|--+|[;:()\[\]{}]")  # spaced dashes, brackets, colons -> comma
_APOSTROPHE_RE = re.compile(r"(?<![a-z])'|'(?![a-z])")
_DROP_RE = re.compile(r"[^a-z' .,?!]")
_PUNCT_RUN_RE = re.compile(r"\s*([.,?!](?:\s*[.,?!])*)")
_PUNCT_PRIORITY = "?!.,"


def _collapse_punct(m: re.Match) -> str:
    run = m.group(1)
    for p in _PUNCT_PRIORITY:
        if p in run:
            return p + " "
    raise AssertionError("unreachable")


def normalize_text(text: str, lang: str = "en", keep_punctuation: bool = True) -> str:
    """Spoken-form English: see the module docstring for the rules, in order.

    Args:
        text: raw text (one utterance).
        lang: only ``"en"`` is implemented; another value raises ValueError.
        keep_punctuation: keep ``. , ? !`` (attached to the preceding word); when False
            they are removed too, leaving lowercase words, apostrophes and single spaces.
    """
    text = _DROP_RE.sub(" ", _spoken_form(text, lang))
    if keep_punctuation:
        text = _PUNCT_RUN_RE.sub(_collapse_punct, text)
        text = " ".join(text.split())
        text = text.lstrip(".,?! ")  # a sentence does not start with punctuation
    else:
        text = re.sub(r"[.,?!]", " ", text)
    return " ".join(text.split())


def dropped_chars(text: str, lang: str = "en") -> list[str]:
    """The letters and digits of ``text`` that :func:`normalize_text` removes, in order of appearance.

    Normalization spells out what it can (numbers, symbols, accented letters) and drops the
    rest; dropping quotes or asterisks is meant, dropping a letter is not: ``hello 你好 world``
    normalizes to ``hello world``. Callers use this to name such characters per utterance.
    """
    out: list[str] = []
    for c in _DROP_RE.findall(_spoken_form(text, lang)):
        if c.isalnum() and c not in out:
            out.append(c)
    return out


def _spoken_form(text: str, lang: str) -> str:
    """Steps 1-4 of :func:`normalize_text` up to (not including) dropping the unknown symbols."""
    if lang not in SUPPORTED_LANGS:
        raise ValueError(
            f"normalize_text: language {lang!r} is not supported (supported: {', '.join(SUPPORTED_LANGS)})"
        )
    text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
    text = _strip_accents(text)
    text = _expand_abbreviations(text)
    text = _expand_numbers(text)
    text = text.lower()
    for sym, words in _SYMBOLS:
        text = text.replace(sym, words)
    text = _PAUSE_RE.sub(" , ", text)
    text = text.replace("-", " ")
    return _APOSTROPHE_RE.sub(" ", text)
