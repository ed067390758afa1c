"""Batched autoregressive sampling of speech tokens from a CodecLM, with a KV cache.

Every (text, prompt) row is sampled `num_candidates` times in one batch. Top-k, top-p and
temperature filter the distribution; a repetition guard (after CosyVoice 2's
repetition-aware sampling) redraws from the unfiltered distribution without the drawn token
when that token already filled its recent window; <eos> is suppressed before `min_len` and forced at `max_len`, both
proportional to the number of target text tokens. The same seed gives the same samples.
Classifier-free guidance (``cfg_scale`` s > 0, for an LM trained with ``text_dropout``, as
CosyVoice 2 and VALL-E-style TTS use it): every row is also run without its text (the same
prefix with no text columns), and tokens are drawn from ``(1 + s) log p(.|text) - s log
p(.|no text)``, which pushes the speech toward what the text, not the speaker's habits, says;
the reported log-probs stay those of the conditional model.
Rows that finished leave the batch (``compact``) once a quarter of the rows being computed are
done, so candidates of different lengths do not keep computing padding until the longest ends.

Usage::

    cfg = SamplingConfig(num_candidates=4, top_k=50, seed=0)
    out = sample(model, text, text_lens, cfg, prompt=prompt, prompt_lens=prompt_lens,
                 target_text_lens=target_lens)
    out.tokens[i]      # LongTensor of row i // num_candidates, candidate i % num_candidates
    out.logprobs[i]    # sum of log p(token) under the unfiltered model distribution
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ttsrl.models.codec_lm import CodecLM
from ttsrl.utils.config import option

#: Control tags of a CodecLM built with num_tags=2 (Chain-of-Hindsight, ``ttsrl.align --method coh``).
TAGS = {"good": 0, "bad": 1}


def tag_ids(model: CodecLM, tag: str | None, n: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """The (n,) tag ids to pass to :func:`sample` (None for a model without tags).

    A model built with tags gets "good" unless told otherwise; a tag for a model without
    tags is an error (it would be ignored silently).
    """
    if model.config.num_tags == 0:
        if tag is not None:
            raise ValueError(f"tag {tag!r} given but this LM has no control tags (num_tags=0)")
        return None
    tag = "good" if tag is None else tag
    if tag not in TAGS or TAGS[tag] >= model.config.num_tags:
        known = [t for t, i in TAGS.items() if i < model.config.num_tags]
        raise ValueError(f"unknown tag {tag!r}; this LM knows {known}")
    return torch.full((n,), TAGS[tag], dtype=torch.long, device=device)


@dataclass
class SamplingConfig:
    num_candidates: int = option(1, "candidates sampled per (text, prompt) row")
    temperature: float = option(1.0, "softmax temperature of the (guided) logits")
    top_k: int = option(0, "keep the k most likely tokens (0: off)")
    top_p: float = option(1.0, "keep the smallest set of tokens with this probability (1.0: off)")
    max_len_ratio: float = option(6.0, "at most this many speech tokens per target text token")
    min_len_ratio: float = option(0.5, "<eos> is not allowed before this many speech tokens per target text token")
    max_len: int = option(1000, "absolute cap on generated tokens")
    rep_window: int = option(10, "repetition guard: the recent tokens it looks at")
    rep_max: int = option(0, "repetition guard: redraw a token that already fills the window this often (0: off)")
    cfg_scale: float = option(0.0, "classifier-free guidance on the text: draw from (1+s) log p(.|text) - s log "
                                   "p(.|no text) (0: off; needs an LM trained with text_dropout > 0)")
    seed: int = option(0, "random seed: the same seed gives the same samples")
    use_cache: bool = option(True, "decode with a KV cache (false: recompute the sequence every step)")
    compact: bool = option(True, "drop finished rows from the computed batch (and the KV cache)")


@dataclass
class SampleOutput:
    tokens: list[torch.Tensor]  # B * N sequences without <eos>
    logprobs: torch.Tensor  # (B * N,) summed log-probs of the sampled tokens and of a chosen <eos>
    finished: torch.Tensor  # (B * N,) True if the model chose <eos> (False: cut at the length bound)


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Masks logits outside the top-k and outside the smallest set with probability >= top_p. (B, V)"""
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the token that crosses top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


def _draw(logits, cfg: SamplingConfig, history, gen):
    """One token per row from (B, V) logits; `history` (B, t) holds the tokens so far."""
    scaled = logits / max(cfg.temperature, 1e-5)
    probs = filter_logits(scaled, cfg.top_k, cfg.top_p).softmax(-1)
    tok = torch.multinomial(probs, 1, generator=gen).squeeze(1)
    if cfg.rep_max > 0 and history.shape[1] > 0:
        recent = history[:, -cfg.rep_window :]
        repeated = (recent == tok[:, None]).sum(1) >= cfg.rep_max
        if repeated.any():
            full = scaled.scatter(1, tok[:, None], float("-inf"))  # everything but the repeated token
            alt = torch.multinomial(full.softmax(-1), 1, generator=gen).squeeze(1)
            tok = torch.where(repeated, alt, tok)
    return tok


@torch.inference_mode()
def sample(
    model: CodecLM,
    text: torch.Tensor,
    text_lens: torch.Tensor,
    cfg: SamplingConfig,
    prompt: torch.Tensor | None = None,
    prompt_lens: torch.Tensor | None = None,
    target_text_lens: torch.Tensor | None = None,
    spk: torch.Tensor | None = None,
    tags: torch.Tensor | None = None,
) -> SampleOutput:
    """Samples `cfg.num_candidates` speech-token sequences per row.

    text (B, Tt) holds prompt text + target text; prompt (B, Tpr) the prompt's speech tokens;
    target_text_lens (B,) the target part of the text, for the length bounds (default: all).
    """
    was_training = model.training
    model.eval()
    dev = text.device
    N = cfg.num_candidates
    B0 = text.shape[0]
    rep = lambda t: None if t is None else t.repeat_interleave(N, 0)  # noqa: E731
    text, text_lens, spk, tags = rep(text), rep(text_lens), rep(spk), rep(tags)
    if prompt is None:
        prompt = torch.zeros(B0, 0, dtype=torch.long, device=dev)
        prompt_lens = torch.zeros(B0, dtype=torch.long, device=dev)
    prompt, prompt_lens = rep(prompt), rep(prompt_lens)
    tgt = rep(target_text_lens) if target_text_lens is not None else text_lens
    B = text.shape[0]

    x, valid, n_prefix = model.embed_inputs(text, text_lens, prompt, prompt_lens, spk, tags)
    guided = cfg.cfg_scale > 0
    if guided:  # the unconditional rows follow the conditional ones: rows i and B + i
        if model.config.text_dropout <= 0:
            raise ValueError(f"cfg_scale {cfg.cfg_scale} needs an LM trained with text_dropout > 0 (this one has "
                             f"{model.config.text_dropout}): without text it never learned what to say")
        xu, valid_u, n_prefix_u = model.embed_inputs(text, torch.zeros_like(text_lens), prompt, prompt_lens, spk, tags)
        x, valid, n_prefix = torch.cat([x, xu]), torch.cat([valid, valid_u]), torch.cat([n_prefix, n_prefix_u])
    both = (lambda r: torch.cat([r, r + B])) if guided else (lambda r: r)  # noqa: E731  computed rows of `rows`

    max_new = torch.clamp((tgt.float() * cfg.max_len_ratio).ceil().long(), min=1, max=cfg.max_len)
    min_new = (tgt.float() * cfg.min_len_ratio).floor().long()
    room = model.config.max_len - int(valid.sum(1).max())  # positions left after the longest prefix
    if room < int(max_new.max()):
        max_new = max_new.clamp(max=max(room, 1))
    steps = int(max_new.max())

    gen = torch.Generator(device=dev)
    gen.manual_seed(cfg.seed)
    eos = model.eos
    out = torch.full((B, steps), eos, dtype=torch.long, device=dev)
    logprobs = torch.zeros(B, device=dev)
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    lengths = torch.zeros(B, dtype=torch.long, device=dev)
    truncated = torch.zeros(B, dtype=torch.bool, device=dev)

    if cfg.use_cache:
        cache = model.new_cache(x.shape[0], x.shape[1] + steps, dev, x.dtype)
        h_last = model.prefill(x, valid, n_prefix, cache)
        n_valid = valid.sum(1)
    rows = torch.arange(B, device=dev)  # the rows being computed (all of them until some finish)
    for t in range(steps):
        if not cfg.use_cache:
            r2 = both(rows)
            seq = torch.cat([x[r2], model.embed_speech(out[r2 % B, :t])], 1)
            seq_valid = torch.cat([valid[r2], torch.ones(len(r2), t, dtype=torch.bool, device=dev)], 1)
            h_last = model.prefill(seq, seq_valid, n_prefix[r2])
        raw = model.head(h_last).float()  # (rows, V + 1), guided: (2 * rows, V + 1)
        if guided:
            raw, raw_u = raw[: len(rows)], raw[len(rows) :]
            s = cfg.cfg_scale
            logits = (1 + s) * torch.log_softmax(raw, -1) - s * torch.log_softmax(raw_u, -1)
        else:
            logits = raw.clone()
        logits[:, eos] = torch.where(t < min_new[rows], float("-inf"), logits[:, eos])
        tok = _draw(logits, cfg, out[rows, :t], gen)
        was_done = done[rows]
        force_eos = (t >= max_new[rows] - 1) & ~was_done
        forced = force_eos & (tok != eos)
        truncated[rows] |= forced
        tok = torch.where(force_eos | was_done, eos, tok)
        lp = torch.log_softmax(raw, -1).gather(1, tok[:, None]).squeeze(1)
        logprobs[rows] += torch.where(was_done | forced, 0.0, lp)
        out[rows, t] = tok
        lengths[rows] += (~was_done & (tok != eos)).long()
        done[rows] = was_done | (tok == eos)
        if bool(done.all()):
            break
        keep = ~done[rows]
        if cfg.compact and 4 * int(keep.sum()) <= 3 * len(rows):  # a quarter finished: drop them
            rows, tok = rows[keep], tok[keep]
            if cfg.use_cache:
                keep = torch.cat([keep, keep]) if guided else keep
                cache.keep_rows(keep)
                n_valid = n_valid[keep]
        if cfg.use_cache:
            h_last = model.step(torch.cat([tok, tok]) if guided else tok, n_valid, cache)
            n_valid = n_valid + 1
    model.train(was_training)
    return SampleOutput(tokens=[out[i, : lengths[i]].clone() for i in range(B)], logprobs=logprobs,
                        finished=~truncated)
