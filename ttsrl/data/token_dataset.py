"""Datasets over tokenized sets (stage 3 output) for the codec LM and its alignment.

A token dir (``dump/tokens/<set>``, written by ``ttsrl.bin.tokenize_speech``) holds::

    text          <utt> <id> <id> ...      the LM's text units: ids of tokens.txt
    tokens.txt                             the LM's text token list (see ttsrl.text.tokenizer)
    token_type                             char, phn or bpe: the unit of text and tokens.txt
    bpe.model                              bpe: the sentencepiece model of those units
    ctc_text      <utt> <id> <id> ...      the transcript in the speech tokenizer's CTC units
                                           (ids of <tokenizer_dir>/tokens.txt; equal to text
                                           when the LM's units are those)
    speech.scp    <utt> <ark:offset>       int32 speech token ids (kaldiio)
    prompt_text   <utt> <id> ...           optional: LM-unit ids of the zero-shot prompt's text
    prompt_speech.scp                      optional: the prompt's speech tokens

The codec LM (training, sampling, alignment) reads ``text``; whatever scores the text with
a CTC over characters (the multi-task reward model, candidate rewards, DiffRO's reward)
reads ``ctc_text`` (:func:`ctc_text_path`; a token dir written before ``ctc_text``
existed has its CTC units in ``text``). :func:`load_text_tokenizer`
(``ttsrl.text.tokenizer``) builds the tokenizer of ``tokens.txt`` + ``token_type``.

Usage::

    ds = TokenDataset("dump/tokens/train")
    loader = build_loader(ds, ds.lengths, max_tokens=4000, collate_fn=collate_tokens)
    batch = next(iter(loader))   # {"utts", "text", "text_lens", "speech", "speech_lens"}
    ctc = TokenDataset("dump/tokens/train", text_file=CTC_TEXT)   # "text" items in CTC units
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ttsrl.data.arrays import read_scp
from ttsrl.data.datadir import DataDirError, read_kv


def read_id_file(path: str) -> dict[str, list[int]]:
    """Reads a Kaldi-style file of integer id lists; errors name the file and utterance."""
    out = {}
    for utt, value in read_kv(path).items():
        try:
            out[utt] = [int(x) for x in value.split()]
        except ValueError as e:
            raise DataDirError(f"{path}: utterance {utt}: not a list of integer ids: {value[:60]!r}") from e
    return out


#: The token dir's transcript in the speech tokenizer's CTC units (see the module docstring).
CTC_TEXT = "ctc_text"


def ctc_text_path(token_dir: str) -> str:
    """``<token_dir>/ctc_text``, or ``<token_dir>/text`` for a token dir written before stage 3 wrote
    ``ctc_text`` (its ``text`` was in the tokenizer's CTC units then)."""
    path = os.path.join(token_dir, CTC_TEXT)
    return path if os.path.isfile(path) else os.path.join(token_dir, "text")


def ctc_token_list(token_dir: str, tokenizer_dir: str | None = None) -> str:
    """The token list that the ids of ``ctc_text`` index: ``<tokenizer_dir>/tokens.txt``.

    Without ``tokenizer_dir`` the token dir's own ``tokens.txt`` serves when its ``text`` is in
    the CTC units (no ``ctc_text``, or one equal to ``text``); otherwise a ValueError asks for it.
    """
    if tokenizer_dir:
        return os.path.join(tokenizer_dir, "tokens.txt")
    ctc = ctc_text_path(token_dir)
    text = os.path.join(token_dir, "text")
    if ctc == text or _same_file_content(ctc, text):
        return os.path.join(token_dir, "tokens.txt")
    raise ValueError(f"{ctc} holds ids of the speech tokenizer's CTC units, not of {token_dir}/tokens.txt: "
                     "give the tokenizer dir (or the token list of those units)")


def _same_file_content(a: str, b: str) -> bool:
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def has_prompts(token_dir: str) -> bool:
    """Whether a token dir carries zero-shot prompts (stage 3 wrote prompt_speech.scp for it)."""
    return os.path.exists(os.path.join(token_dir, "prompt_speech.scp"))


class TokenDataset(Dataset):
    """(text ids, speech ids[, prompt]) per utterance of a token dir, in sorted utt order.

    ``text_file``: the text ids' file, ``text`` (the LM's units) or :data:`CTC_TEXT` (the speech
    tokenizer's CTC units, read through :func:`ctc_text_path`).
    """

    def __init__(self, token_dir: str, utts: Sequence[str] | None = None, with_prompt: bool = False,
                 text_file: str = "text"):
        self.dir = token_dir
        self.text_path = ctc_text_path(token_dir) if text_file == CTC_TEXT else os.path.join(token_dir, text_file)
        self.text = read_id_file(self.text_path)
        self.speech = read_scp(os.path.join(token_dir, "speech.scp"))
        missing = [u for u in self.text if u not in self.speech]
        if missing:
            raise DataDirError(f"{token_dir}: {len(missing)} utterances have text but no speech tokens, "
                               f"e.g. {missing[:3]}")
        self.utts = sorted(utts if utts is not None else self.text)
        self.with_prompt = with_prompt
        if with_prompt:
            self.prompt_text = read_id_file(os.path.join(token_dir, "prompt_text"))
            self.prompt_speech = read_scp(os.path.join(token_dir, "prompt_speech.scp"))
        self.speech_lens = self._read_lens()

    def _read_lens(self) -> dict[str, int]:
        path = os.path.join(self.dir, "utt2num_tokens")
        if os.path.exists(path):
            return {u: int(n) for u, n in read_kv(path).items()}
        return {u: len(self.speech[u]) for u in self.utts}

    @property
    def lengths(self) -> np.ndarray:
        """Sequence length per item (text + speech + 2 specials), for bucketing."""
        return np.array([len(self.text[u]) + self.speech_lens[u] + 2 for u in self.utts])

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict:
        u = self.utts[i]
        item = {"utt": u, "text": torch.tensor(self.text[u], dtype=torch.long),
                "speech": torch.from_numpy(np.asarray(self.speech[u], dtype=np.int64))}
        if self.with_prompt:
            item["prompt_text"] = torch.tensor(self.prompt_text[u], dtype=torch.long)
            item["prompt_speech"] = torch.from_numpy(np.asarray(self.prompt_speech[u], dtype=np.int64))
        return item


class PromptedTokenDataset(Dataset):
    """Items laid out as zero-shot synthesis reads them: ``[prompt text + text | prompt speech + speech]``.

    The codec LM is prompted at inference with another utterance of the speaker; training on
    single utterances alone never shows it that layout (nor positions that far), so its
    samples drift after a prompt. Here an item of ``base`` whose token dir has prompts
    (dev/test sets, stage 3) uses its own prompt; any other item is prompted, with
    probability ``prompt_prob``, by another utterance of its speaker (``utt2spk``). The pairing
    is drawn once from ``seed`` (the lengths used for bucketing are exact). Items are rows of
    :func:`lm_input`: the batch's ``prompt_lens`` count the prompt speech tokens, which the loss
    does not predict.
    """

    def __init__(self, base: TokenDataset, utt2spk: dict[str, str] | None = None, prompt_prob: float = 0.5,
                 seed: int = 0, max_len: int | None = None):
        if not 0.0 <= prompt_prob <= 1.0:
            raise ValueError(f"prompt_prob must be in [0, 1], got {prompt_prob}")
        self.base = base
        self.partner: dict[str, str] = {}
        if not base.with_prompt and utt2spk and prompt_prob > 0:
            missing = [u for u in base.utts if u not in utt2spk]
            if missing:
                raise DataDirError(f"{len(missing)} utterances of {base.dir} have no speaker in utt2spk, "
                                   f"e.g. {missing[:3]}")
            by_spk: dict[str, list[str]] = {}
            for u in base.utts:
                by_spk.setdefault(utt2spk[u], []).append(u)
            rng = np.random.default_rng(seed)
            for u in base.utts:
                others = [v for v in by_spk[utt2spk[u]] if v != u]
                if others and rng.random() < prompt_prob:
                    v = others[int(rng.integers(len(others)))]
                    if max_len is None or self._len(u) + self._len(v) <= max_len:
                        self.partner[u] = v

    @property
    def utts(self) -> list[str]:
        return self.base.utts

    def _len(self, u: str) -> int:
        return len(self.base.text[u]) + self.base.speech_lens[u] + 2

    @property
    def lengths(self) -> np.ndarray:
        out = self.base.lengths.copy()
        for i, u in enumerate(self.base.utts):
            if self.base.with_prompt:
                out[i] += len(self.base.prompt_text[u]) + len(self.base.prompt_speech[u])
            elif u in self.partner:
                out[i] += self._len(self.partner[u]) - 2
        return out

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = self.base[i]
        ptext = pspeech = None
        if self.base.with_prompt:
            ptext, pspeech = item["prompt_text"], item["prompt_speech"]
        elif item["utt"] in self.partner:
            v = self.partner[item["utt"]]
            ptext = torch.tensor(self.base.text[v], dtype=torch.long)
            pspeech = torch.from_numpy(np.asarray(self.base.speech[v], dtype=np.int64))
        return {"utt": item["utt"], **lm_input(item["text"], ptext, pspeech, item["speech"])}


def lm_speech(speech: torch.Tensor, prompt_speech: torch.Tensor | None = None) -> torch.Tensor:
    """The speech region the codec LM reads: ``prompt speech + speech`` (see :func:`lm_input`)."""
    if prompt_speech is None:
        return speech
    return torch.cat([prompt_speech, speech.to(prompt_speech.dtype)])


def lm_input(text: torch.Tensor, prompt_text: torch.Tensor | None = None, prompt_speech: torch.Tensor | None = None,
             speech: torch.Tensor | None = None) -> dict[str, torch.Tensor | int]:
    """One row of the codec LM's input, laid out as zero-shot synthesis reads it (``ttsrl.models.codec_lm``).

    The one place that says how a prompt and an utterance make the LM's input (training,
    sampling, synthesis, alignment and the KL all build their rows here)::

        text    prompt_text + text        (the LM's text units)
        prompt  prompt speech tokens      (given, not predicted)
        speech  prompt speech + speech    (only when ``speech`` is given: teacher forcing)
        target_text_lens  len(text)       (the text to speak: the sampler's length bounds)

    :func:`collate_tokens` pads a list of rows into ``text``/``text_lens``, ``prompt``/``prompt_lens``,
    ``speech``/``speech_lens`` and ``target_text_lens``. Without a prompt the rows hold the text
    (and speech) alone and an empty prompt.
    """
    empty = torch.zeros(0, dtype=torch.long)
    prompt_speech = empty if prompt_speech is None else torch.as_tensor(prompt_speech, dtype=torch.long)
    text = torch.as_tensor(text, dtype=torch.long)
    row: dict[str, torch.Tensor | int] = {
        "text": text if prompt_text is None else torch.cat([torch.as_tensor(prompt_text, dtype=torch.long), text]),
        "prompt": prompt_speech,
        "target_text_lens": len(text),
    }
    if speech is not None:
        row["speech"] = lm_speech(torch.as_tensor(speech, dtype=torch.long), prompt_speech)
    return row


def pad_1d(seqs: Sequence[torch.Tensor], value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads 1-D tensors: (B, T_max) and lengths (B,)."""
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lens.max()) if len(seqs) else 0), value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lens


def collate_tokens(items: list[dict]) -> dict:
    """Pads every tensor field of the items (lengths go to ``<field>_lens``); int fields become a tensor;
    the items' ``utt`` (when they have one) become ``utts``."""
    batch = {"utts": [it["utt"] for it in items]} if "utt" in items[0] else {}
    for key in items[0]:
        if key == "utt":
            continue
        if isinstance(items[0][key], int):
            batch[key] = torch.tensor([it[key] for it in items], dtype=torch.long)
            continue
        batch[key], batch[f"{key}_lens"] = pad_1d([it[key] for it in items])
    return batch
