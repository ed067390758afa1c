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

Usage::

    model = CodecLM(CodecLMConfig(text_vocab_size=40, speech_vocab_size=500))
    out = model(text, text_lens, speech, speech_lens)          # out.logits (B, Ts + 1, V + 1)
    loss = out.loss                                              # CE over speech targets only
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ttsrl.models.ctc import ctc_loss_per_unit
from ttsrl.models.modules import LinearUpsample


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


def rope_tables(coords: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (B, 1, T, head_dim / 2) of the rotary angles at real-valued positions ``coords`` (B, T)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=coords.device, dtype=torch.float32) / head_dim)
    angles = coords.float()[..., None] * inv_freq
    return angles.cos()[:, None], angles.sin()[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates the two halves of ``x`` (B, H, T, Dh) as (real, imaginary) pairs (RoPE, Su et al. 2021)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class SelfAttention(nn.Module):
    def __init__(self, cfg: CodecLMConfig):
        super().__init__()
        assert cfg.d_model % cfg.n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x, attn_mask, cache: KVCache | None = None, layer: int = 0, rope=None):
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        if rope is not None:  # (cos, sin) of these columns; cached keys are stored rotated
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:  # write this step's keys/values, attend over everything so far
            start = cache.length
            cache.k[layer, :, :, start : start + T] = k
            cache.v[layer, :, :, start : start + T] = v
            k = cache.k[layer, :, :, : start + T]
            v = cache.v[layer, :, :, : start + T]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, cfg: CodecLMConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias),
            nn.GELU(),
            nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x, attn_mask, cache=None, layer=0, rope=None):
        x = x + self.attn(self.ln1(x), attn_mask, cache, layer, rope)
        return x + self.mlp(self.ln2(x))


class CodecLM(nn.Module):
    def __init__(self, cfg: CodecLMConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.d_model
        self.eos = cfg.speech_vocab_size
        self.text_emb = nn.Embedding(cfg.text_vocab_size, D)
        self.speech_emb = nn.Embedding(cfg.speech_vocab_size + 1, D)
        self.special = nn.Embedding(2, D)  # 0 = <sos>, 1 = <task> (end of text, start of speech)
        self.tag_emb = nn.Embedding(cfg.num_tags, D) if cfg.num_tags > 0 else None
        self.spk_proj = nn.Linear(cfg.spk_embed_dim, D) if cfg.spk_embed_dim > 0 else None
        if cfg.position == "learned":
            self.pos_emb = nn.Embedding(cfg.max_len, D)
        elif cfg.position == "rope":
            self.pos_emb = None
            if cfg.speech_pos_rate <= 0:
                raise ValueError("position 'rope' needs speech_pos_rate > 0 (text tokens per speech token)")
            if (D // cfg.n_heads) % 2:
                raise ValueError(f"position 'rope' needs an even head size, got {D // cfg.n_heads}")
        else:
            raise ValueError(f"position must be 'learned' or 'rope', got {cfg.position!r}")
        # columns before the text: <sos>, then the optional tag and speaker columns
        self.text_start = 1 + int(cfg.num_tags > 0) + int(cfg.spk_embed_dim > 0)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, cfg.speech_vocab_size + 1, bias=False)
        # text-position head: ctc_upsample CTC frames over the text vocabulary per speech column
        self.text_pos_head = LinearUpsample(D, cfg.text_vocab_size, cfg.ctc_upsample) if cfg.ctc_weight > 0 else None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

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
        coords = torch.where(offset >= 0, self.text_start + self.cfg.speech_pos_rate * offset.float(), pos.float())
        return x, rope_tables(coords, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_base)

    def _run(self, x, valid, cache: KVCache | None = None, pos_offset=None, n_prefix=None):
        """Runs the transformer over embedded columns `x` (B, T, D) with key validity `valid`.

        Without a cache `valid` (B, T) covers `x`; with a cache, `x` continues the cached
        columns and `valid` covers the new columns only. Positions count valid columns.
        `n_prefix` (B,) counts each row's valid prefix columns (`embed_prefix`, up to <task>);
        the first cached pass stores it in the cache for `decode_step`.
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
            pos = pos_offset[:, None] + valid.long().cumsum(1) - 1
            pos = pos.clamp(min=0)
            causal = torch.ones(T, start + T, dtype=torch.bool, device=dev).tril(diagonal=start)
        if int(pos.max()) >= self.cfg.max_len:
            raise ValueError(f"sequence of {int(pos.max()) + 1} positions exceeds max_len={self.cfg.max_len}")
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

    def decode_step(self, tok: torch.Tensor, pos: torch.Tensor, cache: KVCache) -> torch.Tensor:
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

    def forward(self, text, text_lens, speech, speech_lens, prompt_lens=None, spk=None, tags=None):
        """Teacher-forced pass.

        text (B, Tt) ids, text_lens (B,); speech (B, Ts) ids (prompt + target when prompted),
        speech_lens (B,); prompt_lens (B,) speech tokens at the start that are given, not
        predicted (None = 0). Returns LMOutput with logits for every speech target and <eos>.
        """
        x, valid = self.embed_prefix(text, text_lens, spk, tags)
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
            ctc = ctc_loss_per_unit(log_probs, speech_lens * self.cfg.ctc_upsample, text, text_lens)
        return LMOutput(logits=logits, target=target, mask=mask, loss=loss, acc=acc, ctc_loss=ctc)

    def token_logprobs(self, text, text_lens, speech, speech_lens, prompt_lens=None, spk=None, tags=None):
        """Per-token log p(target) (B, Ts + 1) and the mask of predicted positions (prompt and padding excluded)."""
        out = self.forward(text, text_lens, speech, speech_lens, prompt_lens, spk, tags)
        logp = torch.log_softmax(out.logits.float(), -1).gather(-1, out.target[..., None]).squeeze(-1)
        return logp * out.mask, out.mask
