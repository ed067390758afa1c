"""Codec language model: a decoder-only transformer over [text | prompt speech | speech] tokens.

The sequence the model reads (CosyVoice / VALL-E style zero-shot TTS)::

    <sos> [tag] [spk] t_1 .. t_n <task> s_1 .. s_m        ->  predicts s_1 .. s_m <eos>

- text tokens come from a `ttsrl.text` tokenizer; speech tokens from the speech tokenizer;
- `tag` is an optional control token (Chain-of-Hindsight "good"/"bad"), `spk` an optional
  projected speaker embedding;
- in zero-shot synthesis the text is `prompt_text + text` and the speech region starts with
  the prompt's speech tokens, which are given, not predicted (`prompt_lens` masks them out).

Batches are laid out with padding *inside* the sequence: every sample's text region is padded
to the batch's longest text, so the speech region starts at the same column for every sample.
Padded positions are masked out of attention and do not advance the position index, so a
sample's logits do not depend on what it is batched with (tested), and the sampler's layout
(text padded, then prompt padded, then generated tokens) gives the same log-probs as the
training layout.

Positions (``position``): ``learned`` adds one learned table over all columns; ``rope`` rotates
queries and keys (RoPE) by a coordinate that puts the speech region on the text's scale:
column ``j`` of the speech region (prompt included) sits at ``text_start + speech_pos_rate * j``,
where ``speech_pos_rate`` is text tokens per speech token (Deep Voice 3's "position rate"). The
aligned text position of each speech token is then at relative distance ~0, which a head
can find from the rotation alone; the LM task measures the rate on the training data.

Text-position head (``ctc_weight > 0``): a linear layer on the hidden state of every speech
column predicts, by CTC (blank = text id 0), the text the speech region reads (the prompt's
text and the text). A causal column that must say which text unit it is speaking tracks its
place in the text, the alignment a small autoregressive model otherwise learns slowly (as
auxiliary CTC helps attention-based ASR, Kim et al. 2017, and VALL-E-style TTS with
alignment guidance). It costs one projection in training and nothing at inference; the
task adds ``ctc_weight * ctc_loss`` to the cross-entropy.

Text dropout (``text_dropout > 0``): the LM task hides the text of that share of training items
(``forward(..., drop_text=mask)``: the prefix keeps no text column, the text-position head still
reads the text), so the same model is also the unconditional LM that classifier-free guidance
subtracts (``SamplingConfig.cfg_scale``).

Usage::

    model = CodecLM(CodecLMConfig(text_vocab_size=40, speech_vocab_size=500))
    out = model(text, text_lens, speech, speech_lens)          # out.logits (B, Ts + 1, V + 1)
    loss = out.loss                                              # CE over speech targets only
    lm = load_codec_lm("exp/base/lm")                           # a trained LM (its folder or model.pt)
    x, valid, n_prefix = lm.embed_inputs(text, text_lens, prompt, prompt_lens)   # what a sampler reads
    h = lm.prefill(x, valid, n_prefix, cache)                   # (B, D); then lm.step(tok, pos, cache)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ttsrl.models.ctc import ctc_loss_per_unit
from ttsrl.models.modules import LinearUpsample, MultiHeadSelfAttention, rope_tables
from ttsrl.utils.checkpoint import load_model


@dataclass
class CodecLMConfig:
    text_vocab_size: int = 64  # ids of the text tokenizer (0 = <blank>/pad is never attended)
    speech_vocab_size: int = 512  # speech tokenizer codebook; id `speech_vocab_size` is <eos>
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    max_len: int = 2048  # positions (text + prompt + speech + specials)
    spk_embed_dim: int = 0  # >0: a speaker embedding of this size is projected in as one token
    num_tags: int = 0  # >0: control tags (e.g. Chain-of-Hindsight good/bad) as one token
    bias: bool = True
    position: str = "learned"  # "learned" (absolute table) or "rope" (rotary, speech on the text's scale)
    speech_pos_rate: float = 0.0  # rope: text tokens per speech token (> 0; the LM task measures it when 0)
    rope_base: float = 10000.0  # rope: the base of the rotation frequencies
    ctc_weight: float = 0.0  # >0: the text-position head (CTC of the text from the speech columns) and its weight
    ctc_upsample: int = 2  # text-position head: CTC frames per speech column (fast speech has ~1.7 per unit)
    text_dropout: float = 0.0  # share of training items whose text is hidden (the LM task draws them): CFG's unconditional model


@dataclass
class LMOutput:
    logits: torch.Tensor  # (B, Ts + 1, V + 1): predictions for s_1 .. s_m, <eos>
    target: torch.Tensor  # (B, Ts + 1) speech ids with <eos> at each sample's end
    mask: torch.Tensor  # (B, Ts + 1) True where the target is a predicted speech token or <eos>
    loss: torch.Tensor  # mean cross-entropy over `mask`
    acc: torch.Tensor  # token accuracy over `mask`
    ctc_loss: torch.Tensor | None = None  # text-position head: CTC per text unit (None without the head)


class KVCache:
    """Preallocated keys/values for incremental decoding: (layers, B, H, max_len, Dh)."""

    def __init__(self, n_layers, batch, n_heads, max_len, head_dim, device, dtype):
        shape = (n_layers, batch, n_heads, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.key_mask = torch.zeros(batch, max_len, dtype=torch.bool, device=device)
        self.length = 0
        self.n_prefix: torch.Tensor | None = None  # (B,) prefix columns per row, set by the first pass

    def keep_rows(self, keep: torch.Tensor) -> None:
        """Keeps the batch rows where ``keep`` (B,) is True (finished rows leave the batch)."""
        self.k, self.v, self.key_mask = self.k[:, keep], self.v[:, keep], self.key_mask[keep]
        if self.n_prefix is not None:
            self.n_prefix = self.n_prefix[keep]


class Block(nn.Module):
    def __init__(self, config: CodecLMConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = MultiHeadSelfAttention(config.d_model, config.n_heads, config.dropout, bias=config.bias)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff, bias=config.bias),
            nn.GELU(),
            nn.Linear(config.d_ff, config.d_model, bias=config.bias),
            nn.Dropout(config.dropout),
        )

    def forward(self, x, attn_mask, cache=None, layer=0, rope=None):
        x = x + self.attn(self.ln1(x), attn_mask, rope, cache, layer)
        return x + self.mlp(self.ln2(x))


class CodecLM(nn.Module):
    def __init__(self, config: CodecLMConfig):
        super().__init__()
        self.config = config
        D = config.d_model
        self.eos = config.speech_vocab_size
        self.text_emb = nn.Embedding(config.text_vocab_size, D)
        self.speech_emb = nn.Embedding(config.speech_vocab_size + 1, D)
        self.special = nn.Embedding(2, D)  # 0 = <sos>, 1 = <task> (end of text, start of speech)
        self.tag_emb = nn.Embedding(config.num_tags, D) if config.num_tags > 0 else None
        self.spk_proj = nn.Linear(config.spk_embed_dim, D) if config.spk_embed_dim > 0 else None
        if config.position == "learned":
            self.pos_emb = nn.Embedding(config.max_len, D)
        elif config.position == "rope":
            self.pos_emb = None
            if config.speech_pos_rate <= 0:
                raise ValueError("position 'rope' needs speech_pos_rate > 0 (text tokens per speech token)")
            if (D // config.n_heads) % 2:
                raise ValueError(f"position 'rope' needs an even head size, got {D // config.n_heads}")
        else:
            raise ValueError(f"position must be 'learned' or 'rope', got {config.position!r}")
        # columns before the text: <sos>, then the optional tag and speaker columns
        self.text_start = 1 + int(config.num_tags > 0) + int(config.spk_embed_dim > 0)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, config.speech_vocab_size + 1, bias=False)
        # text-position head: ctc_upsample CTC frames over the text vocabulary per speech column
        self.text_pos_head = (LinearUpsample(D, config.text_vocab_size, config.ctc_upsample)
                              if config.ctc_weight > 0 else None)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ prefix
    def embed_prefix(self, text, text_lens, spk=None, tags=None):
        """Embeds `<sos> [tag] [spk] text(padded) <task>`.

        Returns (x (B, Tp, D), valid (B, Tp) bool). Text padding sits between the text and
        <task>, so <task> is always the last column.
        """
        B, Tt = text.shape
        dev = text.device
        parts = [self.special.weight[0].expand(B, 1, -1)]
        valid = [torch.ones(B, 1, dtype=torch.bool, device=dev)]
        if self.tag_emb is not None:
            if tags is None:
                raise ValueError("this model was built with num_tags > 0: pass tags (B,)")
            parts.append(self.tag_emb(tags).unsqueeze(1))
            valid.append(torch.ones(B, 1, dtype=torch.bool, device=dev))
        if self.spk_proj is not None:
            if spk is None:
                raise ValueError("this model was built with spk_embed_dim > 0: pass spk (B, E)")
            parts.append(self.spk_proj(spk).unsqueeze(1))
            valid.append(torch.ones(B, 1, dtype=torch.bool, device=dev))
        text_valid = torch.arange(Tt, device=dev)[None, :] < text_lens[:, None]
        parts.append(self.text_emb(text.masked_fill(~text_valid, 0)))
        valid.append(text_valid)
        parts.append(self.special.weight[1].expand(B, 1, -1))
        valid.append(torch.ones(B, 1, dtype=torch.bool, device=dev))
        return torch.cat(parts, dim=1), torch.cat(valid, dim=1)

    def embed_speech(self, speech):
        return self.speech_emb(speech)

    # ------------------------------------------------------------------ core
    def _positions(self, x, pos, n_prefix):
        """Adds learned positions to `x`, or returns `x` and the RoPE tables of columns at `pos` (B, T)."""
        if self.pos_emb is not None:
            return x + self.pos_emb(pos), None
        if n_prefix is None:
            raise ValueError("position 'rope' needs n_prefix, the prefix columns of each row")
        offset = pos - n_prefix[:, None]  # >= 0 in the speech region
        c = self.config
        coords = torch.where(offset >= 0, self.text_start + c.speech_pos_rate * offset.float(), pos.float())
        return x, rope_tables(coords, c.d_model // c.n_heads, c.rope_base)

    def _run(self, x, valid, cache: KVCache | None = None, pos_offset=None, n_prefix=None):
        """Runs the transformer over embedded columns `x` (B, T, D) with key validity `valid`.

        Without a cache `valid` (B, T) covers `x`; with a cache, `x` continues the cached
        columns and `valid` covers the new columns only (`pos_offset` (B,): the valid columns
        before them, default 0). Positions count valid columns. `n_prefix` (B,) counts each
        row's valid prefix columns (`embed_prefix`, up to <task>); the first cached pass stores
        it in the cache for `step`.
        """
        B, T, _ = x.shape
        dev = x.device
        if cache is None:
            keys_valid = valid
            pos = (valid.long().cumsum(1) - 1).clamp(min=0)
            causal = torch.ones(T, T, dtype=torch.bool, device=dev).tril()
        else:
            start = cache.length
            cache.key_mask[:, start : start + T] = valid
            keys_valid = cache.key_mask[:, : start + T]
            pos = valid.long().cumsum(1) - 1 + (0 if pos_offset is None else pos_offset[:, None])
            pos = pos.clamp(min=0)
            causal = torch.ones(T, start + T, dtype=torch.bool, device=dev).tril(diagonal=start)
        if int(pos.max()) >= self.config.max_len:
            raise ValueError(f"sequence of {int(pos.max()) + 1} positions exceeds max_len={self.config.max_len}")
        # (B, 1, T, S): causal and key is real. A padded query row still sees itself so that
        # softmax never meets an all-masked row; its output is ignored.
        mask = causal[None, None] & keys_valid[:, None, None, :]
        eye = torch.zeros_like(mask)
        if cache is None:
            eye[..., torch.arange(T), torch.arange(T)] = True
        else:
            eye[..., torch.arange(T), start + torch.arange(T)] = True
        mask = mask | eye
        if cache is not None and n_prefix is not None:
            cache.n_prefix = n_prefix
        h, rope = self._positions(x, pos, n_prefix if cache is None else cache.n_prefix)
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, mask, cache, i, rope)
        if cache is not None:
            cache.length += T
        return self.ln_f(h)

    # ------------------------------------------------------------------ incremental decoding (the sampler's)
    def embed_inputs(self, text, text_lens, prompt=None, prompt_lens=None, spk=None, tags=None):
        """Embeds what a sampler reads before the first token: `<sos> [tag] [spk] text <task> prompt`.

        text (B, Tt) ids (prompt text + text), text_lens (B,); prompt (B, Tp) the prompt's speech
        tokens, prompt_lens (B,) (None: no prompt). Returns x (B, T, D), valid (B, T) and
        n_prefix (B,): each row's valid columns up to <task> (for `prefill`).
        """
        x, valid = self.embed_prefix(text, text_lens, spk, tags)
        n_prefix = valid.sum(1)
        if prompt is not None:
            p_valid = torch.arange(prompt.shape[1], device=prompt.device)[None, :] < prompt_lens[:, None]
            x = torch.cat([x, self.embed_speech(prompt.masked_fill(~p_valid, 0))], 1)
            valid = torch.cat([valid, p_valid], 1)
        return x, valid, n_prefix

    def new_cache(self, batch: int, max_len: int, device, dtype) -> KVCache:
        """An empty KV cache for `batch` rows of up to `max_len` columns."""
        c = self.config
        return KVCache(c.n_layers, batch, c.n_heads, max_len, c.d_model // c.n_heads, device, dtype)

    def prefill(self, x, valid, n_prefix, cache: KVCache | None = None) -> torch.Tensor:
        """Hidden state (B, D) of each row's last valid column of the embedded columns `x` (B, T, D).

        `valid` (B, T) and `n_prefix` (B,) as `embed_inputs` returns them. With an (empty) cache the
        columns' keys and values are stored in it, and `step` continues from there; without one
        the whole sequence is run (the sampler's uncached path calls it once per token).
        """
        h = self._run(x, valid, cache, n_prefix=n_prefix)
        last = valid.shape[1] - 1 - valid.flip(1).long().argmax(1)  # last real column per row
        return h[torch.arange(h.shape[0], device=h.device), last]

    def step(self, tok: torch.Tensor, pos: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One cached step: speech token `tok` (B,) at position `pos` (B,) -> hidden (B, D).

        The incremental twin of `_run` for a single valid column: no causal mask is needed
        (the query is the newest column) and no position check (the sampler checks once).
        """
        L = cache.length
        cache.key_mask[:, L] = True
        mask = cache.key_mask[:, None, None, : L + 1]  # (B, 1, 1, S)
        h, rope = self._positions(self.speech_emb(tok)[:, None], pos[:, None], cache.n_prefix)  # (B, 1, D)
        for i, block in enumerate(self.blocks):
            h = block(h, mask, cache, i, rope)
        cache.length += 1
        return self.ln_f(h)[:, 0]

    # ------------------------------------------------------------------ training and scoring
    def forward(self, text, text_lens, speech, speech_lens, prompt_lens=None, spk=None, tags=None, drop_text=None):
        """Teacher-forced pass.

        text (B, Tt) ids, text_lens (B,); speech (B, Ts) ids (prompt + target when prompted),
        speech_lens (B,); prompt_lens (B,) speech tokens at the start that are given, not
        predicted (None = 0); drop_text (B,) bool: rows read without their text (text dropout;
        the text-position head's target stays the text). Returns LMOutput with logits for every
        speech target and <eos>.
        """
        shown = text_lens if drop_text is None else text_lens.masked_fill(drop_text, 0)
        x, valid = self.embed_prefix(text, shown, spk, tags)
        B, Ts = speech.shape
        sp_valid = torch.arange(Ts, device=speech.device)[None, :] < speech_lens[:, None]
        xs = self.embed_speech(speech.masked_fill(~sp_valid, 0))
        h = self._run(torch.cat([x, xs], 1), torch.cat([valid, sp_valid], 1), n_prefix=valid.sum(1))
        # column of <task> predicts s_1, column of s_j predicts s_{j+1}, s_m predicts <eos>
        logits = self.head(h[:, x.shape[1] - 1 :])  # (B, Ts + 1, V + 1)
        target = F.pad(speech.masked_fill(~sp_valid, 0), (0, 1))
        target = target.scatter(1, speech_lens[:, None], self.eos)
        j = torch.arange(Ts + 1, device=speech.device)[None, :]
        mask = j <= speech_lens[:, None]
        if prompt_lens is not None:
            mask = mask & (j >= prompt_lens[:, None])
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        n = mask.sum().clamp(min=1)
        loss = (ce * mask).sum() / n
        acc = ((logits.argmax(-1) == target) & mask).sum() / n
        ctc = None
        if self.text_pos_head is not None:  # the columns of s_1 .. s_m read the whole text region
            log_probs = F.log_softmax(self.text_pos_head(h[:, x.shape[1] :]).float(), -1)  # (B, Ts * k, Vt)
            ctc = ctc_loss_per_unit(log_probs, speech_lens * self.config.ctc_upsample, text, text_lens)
        return LMOutput(logits=logits, target=target, mask=mask, loss=loss, acc=acc, ctc_loss=ctc)

    def token_logprobs(self, text, text_lens, speech, speech_lens, prompt_lens=None, spk=None, tags=None):
        """Per-token log p(target) (B, Ts + 1) and the mask of predicted positions (prompt and padding excluded)."""
        out = self.forward(text, text_lens, speech, speech_lens, prompt_lens, spk, tags)
        logp = torch.log_softmax(out.logits.float(), -1).gather(-1, out.target[..., None]).squeeze(-1)
        return logp * out.mask, out.mask


def load_codec_lm(path: str | os.PathLike, device: str | torch.device = "cpu") -> CodecLM:
    """The LM of ``<dir>/model.pt`` (or the file ``path``) written by training or alignment; eval mode."""
    return load_model(path, CodecLM, CodecLMConfig, "codec LM", device)
