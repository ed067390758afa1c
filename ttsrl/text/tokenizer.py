"""Text tokenizers over a token list: characters, phonemes (espeak-ng), BPE (sentencepiece).

Token list
----------
A token list file (ESPnet's ``tokens.txt``) has one token per line; a token's id is its
line number counted from 0. Every list built here has the same frame::

    0           <blank>     CTC blank; also the padding id of batched token tensors
    1           <unk>       any symbol missing from the list
    2 .. V-2    the tokens, most frequent first (char/phn) or in sentencepiece order (bpe)
    V-1         <sos/eos>   begin and end of sequence for language models

so a CTC head uses ``blank_id == 0`` and an LM adds ``sos_eos_id == vocab_size - 1`` at
both ends and pads with 0 (padded positions are masked by length anyway). ``encode``
never emits ``<blank>`` or ``<sos/eos>``; ``decode`` skips them. Word boundaries are the
token ``<space>`` (char, phn); BPE pieces carry sentencepiece's ``▁`` word-start mark.

Normalization
-------------
Tokenizers apply a *cleaner* before splitting: ``"en"`` (default) is
:func:`ttsrl.text.normalize.normalize_text`, ``None`` leaves the text as it is. The
cleaner is idempotent, so text normalized by a recipe's ``local/`` script is unchanged.
``decode(encode(x))`` therefore returns the *normalized* text for char and bpe (when
every symbol is known), and for phn the phone string ``"həlˈoʊ wˈɜːld"`` that espeak-ng
gives without phone separators.

Unknown symbols
---------------
A symbol missing from the token list becomes ``<unk>``. :meth:`encode_with_unknown`
returns, per text, the ids and the distinct unknown symbols so a caller can name the
utterance; every tokenizer also collects them in ``unknown_symbols`` and logs each new
one once.

A letter or digit the phoneme tokenizer cannot turn into phones (a CJK or Cyrillic
character, which the English cleaner drops and espeak-ng would spell as "chinese letter")
raises :class:`UnpronounceableError` naming the character and the text, and, from
:func:`encode_texts` and :func:`build_token_list` over ``{utt: text}``, the utterance:
dropping it would make the LM read another text than the one asked for. Symbols (emoji,
``#``, ``*``) are dropped by the cleaner as for every unit type.

Text units of a folder
----------------------
A folder that holds ``tokens.txt``, a one-line ``token_type`` (char, phn or bpe; when absent,
bpe with a ``bpe.model``, else char) and, for bpe, ``bpe.model`` describes a set of text units: stage 3's token dirs
and text-unit list, and a codec LM's exp dir (train_lm copies them there).
:func:`write_text_units` writes them, :func:`copy_text_units` carries them forward and
:func:`load_text_tokenizer` builds their tokenizer.

Usage::

    from ttsrl.text.tokenizer import build_token_list, build_tokenizer, train_bpe, write_token_list

    tokens = build_token_list("char", texts)                       # ['<blank>', '<unk>', ...]
    write_token_list("data/token_list/char/tokens.txt", tokens)
    tok = build_tokenizer("char", token_list="data/token_list/char/tokens.txt")
    ids = tok.encode("Hello world!")                               # [...]
    tok.decode(ids)                                                # 'hello world!'

    tok = build_tokenizer("phn", token_list=build_token_list("phn", texts))
    train_bpe(texts, "data/token_list/bpe/bpe", vocab_size=500)    # bpe.model, bpe.vocab
    tok = build_tokenizer("bpe", bpemodel="data/token_list/bpe/bpe.model")

    write_text_units("dump/tokens/text_units", tok)                # tokens.txt, token_type, bpe.model
    tok = load_text_tokenizer("exp/base/lm")                       # the LM's text units
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from ttsrl.text.normalize import dropped_chars, normalize_text
from ttsrl.utils.fileio import atomic_copy, atomic_write_text

logger = logging.getLogger(__name__)

BLANK = "<blank>"
UNK = "<unk>"
SOS_EOS = "<sos/eos>"
SPACE = "<space>"
BLANK_ID = 0
UNK_ID = 1
SPECIAL_TOKENS = (BLANK, UNK, SOS_EOS)
TOKEN_TYPES = ("char", "phn", "bpe")
CLEANERS = (None, "en")
#: The files that describe a folder's text units (see the module docstring).
TEXT_UNIT_FILES = ("tokens.txt", "token_type", "bpe.model")


class TokenListError(ValueError):
    """A token list (file) breaks the convention of the module docstring."""


class UnpronounceableError(ValueError):
    """A text holds a letter or digit the phoneme tokenizer cannot turn into phones.

    ``symbol``, ``text`` (as given, before cleaning) and ``utt`` (when the caller knows
    it, see :meth:`for_utt`) name what is wrong; the message says why.
    """

    def __init__(self, symbol: str, text: str, reason: str, utt: str | None = None):
        self.symbol, self.text, self.reason, self.utt = symbol, text, reason, utt
        name = unicodedata.name(symbol, f"U+{ord(symbol):04X}")
        where = f"utterance '{utt}': " if utt is not None else ""
        super().__init__(f"{where}cannot phonemize {symbol!r} ({name}) in the text {text!r}: {reason}")

    def for_utt(self, utt: str) -> UnpronounceableError:
        return UnpronounceableError(self.symbol, self.text, self.reason, utt)


def _name_utterance(err: UnpronounceableError, items: Iterable[tuple[str | None, str]]) -> UnpronounceableError:
    """``err`` naming the first utterance of ``items`` (``(utt, text)``) whose text is the failing one."""
    for utt, text in items:
        if utt is not None and text == err.text:
            return err.for_utt(utt)
    return err


# -- token list files ----------------------------------------------------------------
def check_token_list(tokens: Sequence[str], source: str = "token list") -> None:
    """Raise TokenListError unless ``tokens`` is ``<blank>, <unk>, ..., <sos/eos>``
    without duplicates or whitespace."""
    if len(tokens) < 3 or tokens[0] != BLANK or tokens[1] != UNK or tokens[-1] != SOS_EOS:
        raise TokenListError(
            f"{source}: must start with {BLANK}, {UNK} and end with {SOS_EOS} "
            f"(got {list(tokens[:2])} ... {list(tokens[-1:])})"
        )
    seen: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if not t or any(c.isspace() for c in t):
            raise TokenListError(f"{source}: token {i} ({t!r}) is empty or contains whitespace")
        if t in seen:
            raise TokenListError(f"{source}: token {t!r} appears twice (ids {seen[t]} and {i})")
        seen[t] = i


def read_token_list(path: str | os.PathLike) -> list[str]:
    """Read a token list file (one token per line, id = line number) and check it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TokenListError(f"token list not found: {path}")
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    check_token_list(tokens, source=path)
    return tokens


def write_token_list(path: str | os.PathLike, tokens: Sequence[str]) -> None:
    """Write ``tokens`` one per line, atomically (temporary file, then rename)."""
    check_token_list(tokens)
    path = os.fspath(path)
    atomic_write_text(path, "".join(t + "\n" for t in tokens))


def _as_token_list(token_list: str | os.PathLike | Sequence[str] | None) -> list[str] | None:
    if token_list is None:
        return None
    if isinstance(token_list, (str, os.PathLike)):
        return read_token_list(token_list)
    tokens = list(token_list)
    check_token_list(tokens)
    return tokens


# -- the interface -------------------------------------------------------------------
@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of ttsrl uses; see the module docstring for the id convention."""

    tokens: list[str]

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class TokenListTokenizer:
    """Shared mechanics: cleaner, token list lookup, unknown symbols, decoding.

    Subclasses implement :meth:`texts2tokens` (a batch, so slow front ends run once per
    batch) and :meth:`tokens2text`, and name their ``token_type``.
    """

    token_type = ""  # char, phn or bpe (the subclass)

    def __init__(
        self, token_list: str | os.PathLike | Sequence[str] | None = None, cleaner: str | None = "en"
    ):
        if cleaner not in CLEANERS:
            raise ValueError(f"unknown cleaner {cleaner!r} (choose from {CLEANERS})")
        self.cleaner = cleaner
        self.tokens: list[str] = _as_token_list(token_list) or []
        self.token2id = {t: i for i, t in enumerate(self.tokens)}
        self.unknown_symbols: set[str] = set()

    # -- ids ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def blank_id(self) -> int:
        return BLANK_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def sos_eos_id(self) -> int:
        self._require_tokens()
        return len(self.tokens) - 1

    def _require_tokens(self) -> None:
        if not self.tokens:
            raise TokenListError(
                f"{type(self).__name__} has no token list: pass token_list= (see build_token_list)"
            )

    # -- text -----------------------------------------------------------------------
    def clean(self, text: str) -> str:
        return normalize_text(text) if self.cleaner == "en" else text

    def dropped_chars(self, text: str) -> list[str]:
        """The letters and digits of ``text`` that cleaning removes, i.e. that these units cannot spell
        (``hello 你好 world`` -> ``["你", "好"]`` with the English cleaner); [] without a cleaner."""
        return dropped_chars(text) if self.cleaner == "en" else []

    def texts2tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """Clean and split every text into token strings."""
        raise NotImplementedError

    def text2tokens(self, text: str) -> list[str]:
        return self.texts2tokens([text])[0]

    def tokens2text(self, tokens: Sequence[str]) -> str:
        raise NotImplementedError

    def tokens2ids(self, tokens: Sequence[str]) -> tuple[list[int], list[str]]:
        """Ids of ``tokens`` and the distinct unknown ones (in order of appearance)."""
        self._require_tokens()
        ids: list[int] = []
        unknown: list[str] = []
        for t in tokens:
            i = self.token2id.get(t)
            if i is None or i == BLANK_ID or i == len(self.tokens) - 1:
                ids.append(UNK_ID)
                if t not in unknown:
                    unknown.append(t)
            else:
                ids.append(i)
        for t in unknown:
            if t not in self.unknown_symbols:
                self.unknown_symbols.add(t)
                logger.warning(
                    "%s: symbol %r is not in the token list; it is mapped to %s", type(self).__name__, t, UNK
                )
        return ids, unknown

    def ids2tokens(self, ids: Iterable[int]) -> list[str]:
        """Token strings of ``ids``, skipping ``<blank>`` and ``<sos/eos>``."""
        self._require_tokens()
        out = []
        last = len(self.tokens) - 1
        for i in ids:
            i = int(i)
            if not 0 <= i <= last:
                raise ValueError(f"token id {i} is outside the vocabulary (size {len(self.tokens)})")
            if i != BLANK_ID and i != last:
                out.append(self.tokens[i])
        return out

    def encode_with_unknown(self, texts: Sequence[str]) -> list[tuple[list[int], list[str]]]:
        """For each text: its ids and the distinct symbols that were mapped to ``<unk>``."""
        return [self.tokens2ids(toks) for toks in self.texts2tokens(list(texts))]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [ids for ids, _ in self.encode_with_unknown(texts)]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokens2text(self.ids2tokens(ids))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, cleaner={self.cleaner!r})"


def _join_words(tokens: Sequence[str]) -> str:
    return "".join(" " if t == SPACE else t for t in tokens)


class CharTokenizer(TokenListTokenizer):
    """One token per character; a space is ``<space>``."""

    token_type = "char"

    def texts2tokens(self, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for text in texts:
            text = " ".join(self.clean(text).split())
            out.append([SPACE if c == " " else c for c in text])
        return out

    def tokens2text(self, tokens: Sequence[str]) -> str:
        return _join_words(tokens)


class PhonemeTokenizer(TokenListTokenizer):
    """IPA phones from espeak-ng (through phonemizer), one token per phone.

    Words are separated by ``<space>``; stress marks (``ˈ ˌ``) and punctuation kept by
    espeak (``. , ? !`` ...) are tokens of their own, so ``ˈoʊ`` is ``ˈ``, ``oʊ``. The
    espeak backend is created once and called once per batch; results are cached per
    text (a corpus of thousands of sentences takes about a second).

    A letter or digit that cannot become phones raises :class:`UnpronounceableError`: with
    the en cleaner, one it drops (``日``, ``ß``, ``ж``: not English; digits are read out as
    words first); without a cleaner and an English voice, a non-Latin letter, which espeak-ng
    would read as its script's name. Symbols such as emoji are dropped by the cleaner.
    """

    token_type = "phn"
    STRESS = ("ˈ", "ˌ")
    _CACHE_SIZE = 200_000

    def __init__(
        self,
        token_list: str | os.PathLike | Sequence[str] | None = None,
        cleaner: str | None = "en",
        language: str = "en-us",
        with_stress: bool = True,
        preserve_punctuation: bool = True,
    ):
        super().__init__(token_list, cleaner)
        self.language = language
        self.with_stress = with_stress
        self.preserve_punctuation = preserve_punctuation
        self._backend = None
        self._cache: dict[str, list[str]] = {}
        self._why_not: dict[str, str | None] = {}  # character -> why it cannot be phonemized (None: it can)

    def __getstate__(self) -> dict:
        # the espeak backend holds a ctypes library handle: rebuilt in the new process
        state = dict(self.__dict__)
        state["_backend"] = None
        return state

    def _get_backend(self):
        if self._backend is None:
            try:
                from phonemizer.backend import EspeakBackend
                from phonemizer.punctuation import Punctuation
            except ImportError as e:  # pragma: no cover - phonemizer is a dependency
                raise RuntimeError("PhonemeTokenizer needs the 'phonemizer' package") from e
            if not EspeakBackend.is_available():
                raise RuntimeError("PhonemeTokenizer needs espeak-ng (apt-get install espeak-ng)")
            quiet = logging.getLogger(__name__ + ".espeak")
            self._backend = EspeakBackend(
                self.language,
                preserve_punctuation=self.preserve_punctuation,
                with_stress=self.with_stress,
                language_switch="remove-flags",
                logger=quiet,
            )
            self._punct = set(Punctuation.default_marks())
        return self._backend

    def _split_phone(self, item: str) -> list[str]:
        """Split one espeak phone item into stress, phone and punctuation tokens."""
        out: list[str] = []
        head: list[str] = []
        while item and (item[0] in self.STRESS or item[0] in self._punct):
            head.append(item[0])
            item = item[1:]
        tail: list[str] = []
        while item and item[-1] in self._punct:
            tail.insert(0, item[-1])
            item = item[:-1]
        out.extend(head)
        if item:
            out.append(item)
        out.extend(tail)
        return out

    def _phonemize(self, texts: list[str]) -> list[list[str]]:
        from phonemizer.separator import Separator

        backend = self._get_backend()
        # espeak drops empty lines, so only non-empty texts are sent
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out: list[list[str]] = [[] for _ in texts]
        if not todo:
            return out
        lines = backend.phonemize(
            [texts[i] for i in todo], separator=Separator(phone=" ", word=" | ", syllable=""), strip=True
        )
        if len(lines) != len(todo):
            raise RuntimeError(f"phonemizer returned {len(lines)} lines for {len(todo)} texts")
        for i, line in zip(todo, lines, strict=True):
            toks: list[str] = []
            for item in line.split():
                if item == "|":
                    if toks and toks[-1] != SPACE:
                        toks.append(SPACE)
                else:
                    toks.extend(self._split_phone(item))
            while toks and toks[-1] == SPACE:
                toks.pop()
            out[i] = toks
        return out

    def _unpronounceable(self, c: str) -> str | None:
        """Why character ``c`` cannot become phones, or None when it can (or is no letter or digit)."""
        category = unicodedata.category(c)
        if self.cleaner is not None:
            if category[0] in "LN" and not self.clean(c).strip():
                return (f"the {self.cleaner!r} cleaner drops it (it keeps English letters, accented letters "
                        "without their accents, and numbers as words); transliterate or remove it")
        elif (category in ("Lu", "Ll", "Lt", "Lo") and self.language.startswith("en")
              and "LATIN" not in unicodedata.name(c, "")):
            return f"espeak-ng ({self.language}) would read it as its script's name; transliterate or remove it"
        return None

    def check_pronounceable(self, text: str) -> None:
        """Raise :class:`UnpronounceableError` for the first letter or digit of ``text`` that cannot become phones."""
        for c in text:
            if c not in self._why_not:
                self._why_not[c] = self._unpronounceable(c)
            if self._why_not[c] is not None:
                raise UnpronounceableError(c, text, self._why_not[c])

    def texts2tokens(self, texts: Sequence[str]) -> list[list[str]]:
        for t in texts:
            self.check_pronounceable(t)
        cleaned = [" ".join(self.clean(t).split()) for t in texts]
        missing = list(dict.fromkeys(t for t in cleaned if t not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self._CACHE_SIZE:
                self._cache.clear()
            for text, toks in zip(missing, self._phonemize(missing), strict=True):
                self._cache[text] = toks
        return [list(self._cache[t]) for t in cleaned]

    def tokens2text(self, tokens: Sequence[str]) -> str:
        return _join_words(tokens)


class BPETokenizer(TokenListTokenizer):
    """Sentencepiece pieces; the token list defaults to the model's pieces in its order."""

    token_type = "bpe"

    def __init__(
        self,
        bpemodel: str | os.PathLike,
        token_list: str | os.PathLike | Sequence[str] | None = None,
        cleaner: str | None = "en",
    ):
        import sentencepiece as spm

        self.bpemodel = _model_path(bpemodel)
        self.sp = spm.SentencePieceProcessor(model_file=self.bpemodel)
        super().__init__(token_list if token_list is not None else bpe_token_list(self.bpemodel), cleaner)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["sp"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        import sentencepiece as spm

        self.__dict__.update(state)
        self.sp = spm.SentencePieceProcessor(model_file=self.bpemodel)

    def texts2tokens(self, texts: Sequence[str]) -> list[list[str]]:
        cleaned = [" ".join(self.clean(t).split()) for t in texts]
        return [list(p) for p in self.sp.encode(cleaned, out_type=str)]

    def tokens2text(self, tokens: Sequence[str]) -> str:
        return "".join(tokens).replace("▁", " ").strip()


# -- BPE training --------------------------------------------------------------------
def _model_path(bpemodel: str | os.PathLike) -> str:
    """``prefix`` or ``prefix.model`` -> ``prefix.model`` (must exist)."""
    path = os.fspath(bpemodel)
    if not path.endswith(".model"):
        path += ".model"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sentencepiece model not found: {path}")
    return path


def train_bpe(
    texts: Iterable[str],
    model_prefix: str | os.PathLike,
    vocab_size: int,
    cleaner: str | None = "en",
    character_coverage: float = 1.0,
    seed_sentencepiece_size: int = 1_000_000,
) -> str:
    """Train a sentencepiece BPE model on ``texts`` (cleaned first); returns the
    ``<prefix>.model`` path (``<prefix>.vocab`` is written next to it).

    ``vocab_size`` counts sentencepiece's own ``<unk> <s> </s>``; it is a soft limit, so
    a small corpus gives a smaller vocabulary instead of an error. Text normalization is
    the cleaner's job: sentencepiece runs with the ``identity`` rule.
    """
    import sentencepiece as spm

    prefix = os.fspath(model_prefix)
    if prefix.endswith(".model"):
        prefix = prefix[: -len(".model")]
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    clean = (lambda t: normalize_text(t)) if cleaner == "en" else (lambda t: t)
    sentences = [s for s in (" ".join(clean(t).split()) for t in texts) if s]
    if not sentences:
        raise ValueError("train_bpe: no non-empty text to train on")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=character_coverage,
        normalization_rule_name="identity",
        seed_sentencepiece_size=seed_sentencepiece_size,
        input_sentence_size=10_000_000,
        shuffle_input_sentence=True,
        num_threads=max(1, min(8, os.cpu_count() or 1)),
        minloglevel=2,
    )
    return prefix + ".model"


def bpe_token_list(bpemodel: str | os.PathLike) -> list[str]:
    """``<blank> <unk>``, the model's pieces (without its control/unk pieces), ``<sos/eos>``."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=_model_path(bpemodel))
    pieces = [
        sp.id_to_piece(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_unknown(i) or sp.is_control(i)) and sp.id_to_piece(i) not in SPECIAL_TOKENS
    ]
    return [BLANK, UNK, *pieces, SOS_EOS]


# -- factories -----------------------------------------------------------------------
def build_tokenizer(
    kind: str,
    token_list: str | os.PathLike | Sequence[str] | None = None,
    bpemodel: str | os.PathLike | None = None,
    cleaner: str | None = "en",
    g2p_language: str = "en-us",
) -> TokenListTokenizer:
    """A tokenizer of type ``char``, ``phn`` or ``bpe``.

    ``token_list`` is a file path or a list; it is required to encode with char/phn
    (without it only ``text2tokens`` works, which is how :func:`build_token_list` counts).
    ``bpe`` needs ``bpemodel`` (``prefix`` or ``prefix.model``); its token list defaults
    to the model's pieces.
    """
    if kind == "char":
        return CharTokenizer(token_list, cleaner=cleaner)
    if kind == "phn":
        return PhonemeTokenizer(token_list, cleaner=cleaner, language=g2p_language)
    if kind == "bpe":
        if bpemodel is None:
            raise ValueError("build_tokenizer: token type 'bpe' needs bpemodel=")
        return BPETokenizer(bpemodel, token_list, cleaner=cleaner)
    raise ValueError(f"unknown token type {kind!r} (choose from {', '.join(TOKEN_TYPES)})")


def build_token_list(
    kind: str,
    texts: Iterable[str] | Mapping[str, str] = (),
    bpemodel: str | os.PathLike | None = None,
    cleaner: str | None = "en",
    g2p_language: str = "en-us",
    min_count: int = 1,
    batch_size: int = 1000,
) -> list[str]:
    """The token list for ``texts``: ``<blank> <unk>``, tokens seen at least ``min_count``
    times (most frequent first, ties in code point order), ``<sos/eos>``.

    For ``bpe`` the list is the model's pieces (``texts`` are not needed). With ``texts``
    a mapping ``{utt: text}``, an :class:`UnpronounceableError` names the utterance.
    """
    if kind == "bpe":
        if bpemodel is None:
            raise ValueError("build_token_list: token type 'bpe' needs bpemodel= (see train_bpe)")
        return bpe_token_list(bpemodel)
    tok = build_tokenizer(kind, cleaner=cleaner, g2p_language=g2p_language)
    counts: Counter[str] = Counter()
    items = texts.items() if isinstance(texts, Mapping) else ((None, t) for t in texts)
    batch: list[tuple[str | None, str]] = []

    def count(batch):
        try:
            counts.update(t for toks in tok.texts2tokens([text for _, text in batch]) for t in toks)
        except UnpronounceableError as e:
            raise _name_utterance(e, batch) from None

    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            count(batch)
            batch = []
    if batch:
        count(batch)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if not kept:
        raise ValueError(f"build_token_list: no {kind} token found in the texts")
    return [BLANK, UNK, *kept, SOS_EOS]


def encode_texts(
    tokenizer: TokenListTokenizer, texts: Mapping[str, str], batch_size: int = 1000
) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """Encode ``{utt: text}`` in batches; returns ``({utt: ids}, {utt: unknown symbols})``
    (the second only for utterances that have unknown symbols).

    Raises ValueError naming the utterance whose text gives no token at all (after
    cleaning), since an empty input cannot be synthesized, and :class:`UnpronounceableError`
    naming the utterance with a character the phonemizer cannot read.
    """
    utts = list(texts)
    ids: dict[str, list[int]] = {}
    unknown: dict[str, list[str]] = {}
    for start in range(0, len(utts), batch_size):
        chunk = utts[start : start + batch_size]
        try:
            encoded = tokenizer.encode_with_unknown([texts[u] for u in chunk])
        except UnpronounceableError as e:
            raise _name_utterance(e, ((u, texts[u]) for u in chunk)) from None
        for utt, (seq, unk) in zip(chunk, encoded, strict=True):
            if not seq:
                raise ValueError(f"utterance '{utt}': text {texts[utt]!r} gives no tokens after cleaning")
            ids[utt] = seq
            if unk:
                unknown[utt] = unk
    return ids, unknown


# -- the text units of a folder ---------------------------------------------------------
def read_token_type(path: str | os.PathLike) -> str:
    """The ``token_type`` file of folder ``path``; without one (folders written before it existed)
    bpe when the folder has a ``bpe.model``, else char."""
    f = os.path.join(os.fspath(path), "token_type")
    if not os.path.isfile(f):
        return "bpe" if os.path.isfile(os.path.join(os.fspath(path), "bpe.model")) else "char"
    with open(f, encoding="utf-8") as fh:
        kind = fh.read().strip()
    if kind not in TOKEN_TYPES:
        raise TokenListError(f"{f}: unknown token type {kind!r} (one of {', '.join(TOKEN_TYPES)})")
    return kind


def load_text_tokenizer(path: str | os.PathLike, cleaner: str | None = "en",
                        g2p_language: str = "en-us") -> TokenListTokenizer:
    """The tokenizer of a folder holding ``tokens.txt`` [+ ``token_type``, + ``bpe.model``]:
    a stage 3 token dir, its text-unit list or a codec LM's exp dir."""
    path = os.fspath(path)
    kind = read_token_type(path)
    bpemodel = os.path.join(path, "bpe.model") if kind == "bpe" else None
    return build_tokenizer(kind, os.path.join(path, "tokens.txt"), bpemodel=bpemodel, cleaner=cleaner,
                           g2p_language=g2p_language)


def write_text_units(out_dir: str | os.PathLike, tokenizer: TokenListTokenizer) -> None:
    """``tokens.txt``, ``token_type`` and (bpe) ``bpe.model`` of ``tokenizer`` into ``out_dir``, each atomically."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    write_token_list(os.path.join(out_dir, "tokens.txt"), tokenizer.tokens)
    atomic_write_text(os.path.join(out_dir, "token_type"), tokenizer.token_type + "\n")
    if getattr(tokenizer, "bpemodel", None):
        atomic_copy(tokenizer.bpemodel, os.path.join(out_dir, "bpe.model"))


def copy_text_units(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> list[str]:
    """Copy the text-unit files of ``src_dir`` that exist (:data:`TEXT_UNIT_FILES`) into ``dst_dir``; their names."""
    copied = []
    for name in TEXT_UNIT_FILES:
        src = os.path.join(os.fspath(src_dir), name)
        if os.path.isfile(src):
            atomic_copy(src, os.path.join(os.fspath(dst_dir), name))
            copied.append(name)
    return copied
