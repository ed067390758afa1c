"""Multi-task reward model on speech tokens: text (CTC), emotion, gender, age and quality.

A bidirectional transformer reads speech tokens, given as ids or as soft one-hots
(Gumbel-Softmax samples of the codec LM, so that rewards are differentiable)::

    tokens (B, T) ids | (B, T, V) soft --embed--> --Encoder--> h (B, T, D)
        h --LinearUpsample x ctc_upsample--> CTC log-probs over the text vocabulary (B, T * k, V_text)
        h --[cls_layers]--> mean over valid frames --> MLP --> emotion / gender / age logits, quality (B,)

Soft inputs are embedded as ``soft @ table`` and ids as ``table[ids]``, so a one-hot
input gives exactly the output of its ids (tested). The table is a learned embedding, or
(``code_dim > 0``) the speech tokenizer's own code vectors (FSQ codes, a fixed buffer
filled from the tokenizer when training starts) followed by a linear layer, so that the
model knows which tokens sound alike (on mini_en it did not beat the learned table: dev
CTC CER 59 % vs 52 % after 600 steps; conformer layers did, see conf/reward/small.yaml).
With code vectors the text path can start from the tokenizer's own CTC head
(:meth:`MultiTaskReward.init_ctc_from_tokenizer`); ``cls_layers`` more layers then give the
utterance heads (emotion ... quality) depth of their own on top of the shared encoder.
Each token emits ``ctc_upsample``
CTC frames (a projection to k frames, not a plain repetition, so that k frames can carry
k different labels): 25 tokens/s gives 50 CTC frames/s, room for any character rate of
speech plus the blanks CTC needs between repeated labels.

``text_logprob`` is log p_CTC(text | tokens) (Graves et al. 2006), differentiable with
respect to a soft input. A text that the CTC frames cannot hold (fewer frames than
labels plus repeats) has no alignment: instead of CTC's ``-inf`` (or the ``0`` of
``zero_infinity``, which would be the best possible reward) it gets the constant
``infeasible_logprob_per_token * text_len`` and no gradient.

Class names are stored in the config (``config.label_names``: ``{"emotion": [...],
"gender": [...], "age": [...]}``, set from the training data), so targets are given by
name and one ``model.pt`` rebuilds the model. Quality is a regression in the units of
the labels (e.g. a 1-5 MOS); the head works on labels standardized by the training
set's mean and standard deviation (``quality_mean``, ``quality_std``).

The interface the alignment code uses::

    from ttsrl.models.reward import load_reward_model

    rm = load_reward_model("exp/reward")                        # a folder or its model.pt; eval mode
    lp = rm.text_logprob(soft, lens, text, text_lens)           # soft (B, T, V) float -> (B,) log p(text | tokens)
    lp.sum().backward()                                         # gradients reach `soft`
    out = rm(tokens, lens)                                      # ids (B, T) long or soft (B, T, V) float
    out.emo_logits                                              # (B, num_emotions)
    rm.config.label_names["emotion"]                            # ["angry", "happy", ...]: column names of emo_logits
    rm.emotion_names                                            # the same
    rm.label_ids("emotion", ["happy", "sad"])                   # tensor([1, 3]): targets by name

Training (``ttsrl.tasks.reward``) corrupts golden tokens with :func:`corrupt_tokens`
(random substitutions and deletions) so that the model has seen token sequences as
imperfect as the LM's samples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ttsrl.models.modules import Encoder, LinearUpsample, lengths_to_mask
from ttsrl.utils.checkpoint import load_model

__all__ = [
    "CLASS_HEADS",
    "MultiTaskReward",
    "MultiTaskRewardConfig",
    "RewardOutput",
    "corrupt_tokens",
    "ctc_feasible",
    "load_reward_model",
]

#: Classification heads, in the order of ``RewardOutput`` and their ``num_*`` config fields.
CLASS_HEADS: tuple[str, ...] = ("emotion", "gender", "age")
_NUM_FIELD = {"emotion": "num_emotions", "gender": "num_genders", "age": "num_ages"}


@dataclass
class MultiTaskRewardConfig:
    speech_vocab_size: int = 1000  # speech tokenizer codebook (V)
    text_vocab_size: int = 0  # the text token list (0 = <blank>, also the CTC blank); set from tokens.txt
    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 512
    n_layers: int = 4
    conv_kernel: int = 0  # 0 = transformer layers; > 0 = conformer layers with this convolution kernel
    position: str = "abs"  # abs (sinusoidal), rope or none
    dropout: float = 0.1
    ctc_upsample: int = 2  # CTC frames per speech token
    code_dim: int = 0  # > 0: embed tokens by the tokenizer's code vectors of this size (see set_code_table);
    # ttsrl.bin.train_reward takes code_dim=auto and sets it from --tokenizer_dir
    cls_layers: int = 0  # > 0: more encoder layers that only the utterance heads (emotion ... quality) read
    num_emotions: int = 0  # classes per head; 0 = len(label_names[head]); a head with 0 classes is absent
    num_genders: int = 0
    num_ages: int = 0
    label_names: dict[str, list[str]] = field(default_factory=dict)  # {"emotion": [...], "gender": [...], "age": [...]}
    quality: bool = True  # a quality regression head
    quality_mean: float = 0.0  # the head predicts (quality - mean) / std; set from the training labels
    quality_std: float = 1.0
    infeasible_logprob_per_token: float = -20.0  # text_logprob of a text the CTC frames cannot hold, per label
    # training only (ttsrl.tasks.reward): loss weights and augmentation of the golden tokens
    ctc_weight: float = 1.0
    emotion_weight: float = 1.0
    gender_weight: float = 1.0
    age_weight: float = 1.0
    quality_weight: float = 1.0
    sub_prob: float = 0.05  # per token: replaced by a random id ...
    del_prob: float = 0.05  # ... or deleted
    aug_utt_prob: float = 0.5  # share of training utterances that are corrupted at all

    def __post_init__(self) -> None:
        self.label_names = {str(k): [str(n) for n in v] for k, v in (self.label_names or {}).items()}
        unknown = sorted(set(self.label_names) - set(CLASS_HEADS))
        if unknown:
            raise ValueError(f"label_names: unknown heads {unknown}; valid heads: {', '.join(CLASS_HEADS)}")
        for head in CLASS_HEADS:
            names = self.label_names.get(head, [])
            num = getattr(self, _NUM_FIELD[head])
            if len(set(names)) != len(names):
                raise ValueError(f"label_names[{head!r}] has duplicates: {names}")
            if num == 0:
                setattr(self, _NUM_FIELD[head], len(names))
            elif names and num != len(names):
                raise ValueError(f"{_NUM_FIELD[head]}={num} but label_names[{head!r}] has {len(names)} names")
        if self.position not in ("abs", "rope", "none"):
            raise ValueError(f"position must be abs, rope or none, got {self.position!r}")
        if self.ctc_upsample < 1:
            raise ValueError(f"ctc_upsample must be at least 1, got {self.ctc_upsample}")
        if self.cls_layers < 0:
            raise ValueError(f"cls_layers must be >= 0, got {self.cls_layers}")
        if self.quality_std <= 0:
            raise ValueError(f"quality_std must be positive, got {self.quality_std}")
        for name in ("sub_prob", "del_prob", "aug_utt_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def num_classes(self, head: str) -> int:
        return getattr(self, _NUM_FIELD[head])


@dataclass
class RewardOutput:
    ctc_log_probs: torch.Tensor  # (B, T * k, V_text) float32
    ctc_lens: torch.Tensor  # (B,) valid CTC frames
    emo_logits: torch.Tensor | None  # (B, num_emotions); None without an emotion head
    gender_logits: torch.Tensor | None  # (B, num_genders)
    age_logits: torch.Tensor | None  # (B, num_ages)
    quality: torch.Tensor | None  # (B,) in label units (e.g. MOS)
    quality_norm: torch.Tensor | None  # (B,) standardized, what the training loss compares

    def logits(self, head: str) -> torch.Tensor | None:
        return {"emotion": self.emo_logits, "gender": self.gender_logits, "age": self.age_logits}[head]


def ctc_feasible(ctc_lens: torch.Tensor, text: torch.Tensor, text_lens: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: the CTC frames can hold the text (frames >= labels + repeated neighbours)."""
    text_lens = text_lens.to(text.device)
    if text.shape[1] < 2:
        repeats = torch.zeros_like(text_lens)
    else:
        pair_valid = torch.arange(1, text.shape[1], device=text.device)[None, :] < text_lens[:, None]
        repeats = ((text[:, 1:] == text[:, :-1]) & pair_valid).sum(1)
    return ctc_lens.to(text.device) >= text_lens + repeats


def corrupt_tokens(
    ids: torch.Tensor,
    lens: torch.Tensor,
    vocab_size: int,
    sub_prob: float,
    del_prob: float,
    utt_prob: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random substitutions and deletions of speech token ids ``(B, T)``; returns ``(ids, lens)``.

    An utterance is corrupted with probability ``utt_prob``; then each token is deleted with
    probability ``del_prob`` or else replaced by a uniformly drawn id with probability
    ``sub_prob``. At least one token is kept. Padding stays 0; the result may be shorter.
    """
    B, T = ids.shape
    dev = ids.device
    valid = lengths_to_mask(lens, T)
    on = (torch.rand(B, 1, device=dev, generator=generator) < utt_prob) & valid
    u = torch.rand(B, T, device=dev, generator=generator)
    delete = on & (u < del_prob)
    sub = on & ~delete & (u < del_prob + sub_prob)
    rand_ids = torch.randint(0, vocab_size, (B, T), device=dev, generator=generator)
    ids = torch.where(sub, rand_ids, ids)
    keep = valid & ~delete
    keep[:, 0] |= keep.sum(1) == 0  # never delete everything
    new_lens = keep.sum(1)
    pos = (keep.long().cumsum(1) - 1).clamp(min=0)
    out = torch.zeros_like(ids)
    # kept tokens move left to their rank among kept tokens; dropped ones write nowhere (masked)
    out.scatter_(1, torch.where(keep, pos, T - 1), torch.where(keep, ids, 0))
    out = out.masked_fill(~lengths_to_mask(new_lens, T), 0)
    return out, new_lens


class MultiTaskReward(nn.Module):
    def __init__(self, config: MultiTaskRewardConfig):
        super().__init__()
        c = self.config = config
        if c.text_vocab_size < 3:
            raise ValueError(f"text_vocab_size={c.text_vocab_size}: set it to the size of the text token list")
        if c.speech_vocab_size < 1:
            raise ValueError(f"speech_vocab_size={c.speech_vocab_size} must be positive")
        if c.code_dim > 0:  # fixed code vectors (set_code_table) -> linear
            self.register_buffer("code_table", torch.zeros(c.speech_vocab_size, c.code_dim))
            self.code_proj = nn.Linear(c.code_dim, c.d_model)
            self.emb = None
        else:
            self.emb = nn.Embedding(c.speech_vocab_size, c.d_model)
            # the Encoder scales its input by sqrt(d_model): unit-variance embeddings after scaling
            nn.init.normal_(self.emb.weight, std=c.d_model**-0.5)
        self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.conv_kernel, c.dropout, c.position)
        self.ctc_out = LinearUpsample(c.d_model, c.text_vocab_size, c.ctc_upsample)
        self.cls_encoder = (
            Encoder(c.d_model, c.cls_layers, c.n_heads, c.d_ff, c.conv_kernel, c.dropout, "none") if c.cls_layers else None
        )
        self.pool_mlp = nn.Sequential(nn.Linear(c.d_model, c.d_model), nn.GELU(), nn.Dropout(c.dropout))
        self.heads = nn.ModuleDict(
            {h: nn.Linear(c.d_model, c.num_classes(h)) for h in CLASS_HEADS if c.num_classes(h) > 0}
        )
        self.quality_head = nn.Linear(c.d_model, 1) if c.quality else None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.ctc_out.proj.weight.device

    def set_code_table(self, table: torch.Tensor) -> None:
        """The tokenizer's code vectors ``(speech_vocab_size, code_dim)`` (``code_dim > 0`` models)."""
        if self.config.code_dim <= 0:
            raise ValueError("this reward model embeds tokens with a learned table (code_dim 0)")
        if tuple(table.shape) != tuple(self.code_table.shape):
            raise ValueError(f"code table must be {tuple(self.code_table.shape)}, got {tuple(table.shape)}")
        self.code_table.copy_(table.to(self.code_table))

    def init_ctc_from_tokenizer(self, tokenizer: nn.Module) -> None:
        """Copies the speech tokenizer's CTC text head (code vectors -> encoder -> CTC output) into
        this model's text path, so that training starts from the tokenizer's transcription of the
        tokens. Needs ``code_dim`` > 0, the same CTC units and the head's architecture
        (``n_layers`` = the tokenizer's ``ctc_layers``; ``cls_layers`` add depth for the other heads).
        """
        c, t = self.config, tokenizer.config
        want = {"code_dim": tokenizer.fsq.dim, "text_vocab_size": t.vocab_size, "n_layers": t.ctc_layers,
                "d_model": t.d_model, "n_heads": t.n_heads, "d_ff": t.d_ff, "conv_kernel": t.conv_kernel,
                "position": t.position, "ctc_upsample": max(t.ctc_upsample, 1)}
        diff = [f"{k}={getattr(c, k)} (tokenizer: {v})" for k, v in want.items() if getattr(c, k) != v]
        if diff:
            raise ValueError("cannot initialize the reward's text path from the tokenizer's CTC head: " + ", ".join(diff))
        self.code_proj.load_state_dict(tokenizer.ctc_in.state_dict())
        self.encoder.load_state_dict(tokenizer.ctc_encoder.state_dict())
        self.ctc_out.load_state_dict(tokenizer.ctc_out.state_dict())

    # ------------------------------------------------------------------ labels
    @property
    def emotion_names(self) -> list[str]:
        return list(self.config.label_names.get("emotion", []))

    def label_ids(self, head: str, names: Sequence[str | int]) -> torch.Tensor:
        """Class ids ``(B,)`` of ``names`` for ``head`` (ints pass through); unknown names raise."""
        if head not in self.heads:
            raise ValueError(f"this reward model has no {head!r} head (heads: {', '.join(self.heads) or 'none'})")
        known = self.config.label_names.get(head, [])
        index = {n: i for i, n in enumerate(known)}
        out = []
        for n in names:
            if isinstance(n, int) and not isinstance(n, bool):
                if not 0 <= n < self.config.num_classes(head):
                    raise ValueError(f"{head} class id {n} out of range [0, {self.config.num_classes(head)})")
                out.append(n)
            elif n in index:
                out.append(index[n])
            else:
                raise ValueError(f"unknown {head} label {n!r}; the model knows {known}")
        return torch.tensor(out, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ core
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, T)`` -> ``table[ids]``; soft one-hots ``(B, T, V)`` -> ``soft @ table``; ``(B, T, D)``."""
        table = self.emb.weight if self.emb is not None else self.code_table
        if x.dtype in (torch.long, torch.int, torch.int16, torch.uint8):
            if x.dim() != 2:
                raise ValueError(f"token ids must be (B, T), got {tuple(x.shape)}")
            e = F.embedding(x.long(), table)
        elif x.dim() != 3 or x.shape[-1] != self.config.speech_vocab_size:
            raise ValueError(f"soft tokens must be (B, T, {self.config.speech_vocab_size}), got {tuple(x.shape)}")
        else:
            e = x.to(table.dtype) @ table
        return e if self.emb is not None else self.code_proj(e)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> RewardOutput:
        """``x`` ids ``(B, T)`` or soft ``(B, T, V)``, ``lens (B,)`` -> :class:`RewardOutput`."""
        lens = lens.to(x.device).long().clamp(min=1)
        h = self.encoder(self.embed(x), lens)  # (B, T, D), zero at padded frames
        log_probs = F.log_softmax(self.ctc_out(h).float(), dim=-1)  # (B, T * k, V_text)
        if self.cls_encoder is not None:
            h = self.cls_encoder(h, lens)
        pooled = self.pool_mlp(h.sum(1) / lens[:, None].to(h.dtype))  # (B, D) mean over valid frames
        logits = {name: head(pooled) for name, head in self.heads.items()}
        q_norm = self.quality_head(pooled).squeeze(-1) if self.quality_head is not None else None
        c = self.config
        return RewardOutput(
            ctc_log_probs=log_probs,
            ctc_lens=lens * c.ctc_upsample,
            emo_logits=logits.get("emotion"),
            gender_logits=logits.get("gender"),
            age_logits=logits.get("age"),
            quality=None if q_norm is None else q_norm * c.quality_std + c.quality_mean,
            quality_norm=q_norm,
        )

    def ctc_nll(self, out: RewardOutput, text: torch.Tensor, text_lens: torch.Tensor) -> torch.Tensor:
        """Per utterance ``-log p_CTC(text | tokens)`` ``(B,)`` (0 where infeasible, see :func:`ctc_feasible`)."""
        text = text.to(out.ctc_log_probs.device).long()
        text_lens = text_lens.to(text.device).long()
        return F.ctc_loss(
            out.ctc_log_probs.transpose(0, 1), text, out.ctc_lens, text_lens,
            blank=0, reduction="none", zero_infinity=True,
        )  # fmt: skip

    def text_logprob(
        self, x: torch.Tensor, lens: torch.Tensor, text: torch.Tensor, text_lens: torch.Tensor
    ) -> torch.Tensor:
        """``log p_CTC(text | tokens)`` per utterance ``(B,)``: minus the summed CTC loss.

        ``x`` ids ``(B, T)`` or soft one-hots ``(B, T, V)`` (differentiable), ``text (B, L)``
        ids of the text token list (no blank), ``text_lens (B,)``. A text the frames cannot
        hold gets ``infeasible_logprob_per_token * text_len`` (constant, no gradient).
        """
        return self.ctc_logprob(self.forward(x, lens), text, text_lens)

    def ctc_logprob(self, out: RewardOutput, text: torch.Tensor, text_lens: torch.Tensor) -> torch.Tensor:
        """:meth:`text_logprob` from a forward's output (the other heads come from the same pass)."""
        lp = -self.ctc_nll(out, text, text_lens)
        text, text_lens = text.to(lp.device), text_lens.to(lp.device)
        floor = self.config.infeasible_logprob_per_token * text_lens.to(lp.dtype)
        return torch.where(ctc_feasible(out.ctc_lens, text, text_lens), lp, floor)


def load_reward_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> MultiTaskReward:
    """The reward model of ``<dir>/model.pt`` (or the file ``path``) written by ``ttsrl.bin.train_reward``; eval mode."""
    return load_model(path, MultiTaskReward, MultiTaskRewardConfig, "reward model", device, require="text_vocab_size")

