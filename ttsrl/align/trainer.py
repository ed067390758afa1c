"""Aligning the codec LM to preferences and rewards: DPO, SpeechAlign, RAFT / best-of-N, CoH, DiffRO, GRPO.

The policy starts from a trained LM (``--init_lm``), which is also the frozen reference;
:class:`AlignLoss` is the Trainer's loss of every method, :class:`AlignOptions` the options
(one default each) and ``ttsrl.tasks.align.AlignTask`` the training task that runs them with
the shared :class:`ttsrl.train.trainer.Trainer` (checkpoints, exact resume, validation,
``best.pt`` by ``--best_metric``, ``model.pt``). Methods:

===========  =============================================================================
dpo          preference loss (``--loss_type`` sigmoid/cdpo/robust/ipo/hinge, ``--beta``,
             ``--label_smoothing``, ``--average``: summed log-probs by default, token-averaged
             for ipo) on chosen/rejected pairs
             (``ttsrl.losses.preference``), plus ``--sft_weight`` x the chosen tokens' CE
speechalign  the same loss on golden-vs-synthetic pairs (SpeechAlign; the pairs decide)
raft, bon    supervised fine-tuning (LM cross-entropy) on the chosen sequences only
coh          Chain-of-Hindsight: the LM gets a control tag (num_tags=2; the tag embedding is
             new, the rest comes from --init_lm) and is trained with CE on the chosen
             sequence under tag "good" (0) and on the rejected one under tag "bad" (1)
diffro       differentiable reward optimization (``ttsrl.losses.diffro``): a sequence per
             utterance (sampled from the policy, or the pairs' chosen one), a teacher-forced
             pass, straight-through Gumbel one-hots scored by the frozen reward model
             (``--reward_model``), minus ``--kl_weight`` x the KL to the reference
grpo         online RL (``ttsrl.align.grpo``, ``ttsrl.losses.grpo``): every step samples
             ``--group_size`` candidates per (prompt, text) from the current policy, scores them
             (``--reward token``: the reward model; ``audio``: flow + vocoder + a recognizer that
             is not the judge), and optimizes the clipped ratio objective with group-normalized
             advantages and ``--kl_weight`` x the k3 KL to the reference; no pairs
===========  =============================================================================

The reference's log-probs come from a cache computed once per pair file (``--ref_mode
cache``, ``ttsrl.align.ref_cache``) or from the reference model kept in memory (``--ref_mode
model``). Validation reports the loss, ``reward_acc`` (the share of pairs whose implicit
reward ``log pi(y) - log pi_ref(y)`` is higher for chosen than for rejected) and ``kl``
(the token-average KL(policy || reference) of the full next-token distributions along the
chosen sequences); every stat is averaged over pairs. ``metrics.json`` gets the best model's
``val_*`` stats, ``kl`` and ``train_seconds``.

The policy reads the token dir's ``text`` (the LM's text units); DiffRO's reward model scores
its ``ctc_text`` (the speech tokenizer's CTC units). The aligned LM's exp dir gets the text-unit
files (``tokens.txt``, ``token_type``, ``bpe.model``) of ``--init_lm``'s folder, or of
``--token_dir`` for an LM saved without them, so that it synthesizes with the right units; an
``--init_lm`` whose units differ from the token dir's is an error.

Usage (``ttsrl.bin.train_align`` runs it all)::

    opts = AlignOptions(method="dpo", init_lm="exp/base/lm/model.pt", token_dir="dump/tokens/train",
                        pairs="exp/base/pairs/train/pairs.jsonl", beta=0.1)
    policy = build_policy(opts.init_lm, opts.method, {"dropout": 0.0})
    loss_fn = AlignLoss(opts, reference=load_reference(opts.init_lm, "cpu"))
    loss, stats = loss_fn(policy, collate_pairs([pair_dataset[i] for i in range(8)]))   # the Trainer's loss
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ttsrl.align.data import forward_rows, speech_rows
from ttsrl.align.ref_cache import RefLogps
from ttsrl.losses.diffro import diffro_loss, masked_token_mean, token_kl
from ttsrl.losses.preference import (
    LOSS_TYPES,
    check_preference_options,
    preference_loss,
    resolve_average,
    sequence_logprobs,
    sft_loss,
)
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig, load_codec_lm
from ttsrl.sample.sampler import TAGS, SamplingConfig, sample
from ttsrl.train.trainer import unwrap_model
from ttsrl.utils.checkpoint import load_checkpoint
from ttsrl.utils.config import ConfigError, option

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "ONLINE_METHODS", "AlignLoss", "AlignOptions", "build_policy", "build_reward_fn",
           "carry_text_units", "load_reference"]

METHODS = ("dpo", "speechalign", "raft", "bon", "coh", "diffro", "grpo")
#: Methods that sample their own sequences (no --pairs needed).
ONLINE_METHODS = ("diffro", "grpo")
PREFERENCE_METHODS = ("dpo", "speechalign")


# --------------------------------------------------------------------------- options
@dataclasses.dataclass
class AlignOptions:
    """The options of an alignment run (``ttsrl.bin.train_align`` exposes each as ``--<name>``)."""

    method: str = option(help="alignment method (see ttsrl.align.trainer)", choices=METHODS)
    init_lm: str = option(help="model.pt of the trained LM: the policy's start and the reference")
    token_dir: str = option(help="token dir of the pairs' set (text, prompts)")
    pairs: str | None = option(None, "pairs.jsonl of ttsrl.bin.make_pairs (optional for diffro: without it every "
                                     "utterance of --token_dir is used with its ground-truth tokens)")
    valid_pairs: str | None = option(None, "pairs.jsonl for validation and early stopping")
    valid_token_dir: str | None = option(None, "token dir of the validation pairs")
    lm_prompt: bool = option(True, "the LM reads the token dirs' zero-shot prompts (prompt text + text, prompt "
                                   "speech + speech) where they have them, as in sampling; false: the text alone")
    # reference
    ref_mode: str = option("cache", "cache: the reference's log-probs computed once per pair file (dpo, "
                                    "speechalign); model: the frozen reference runs in every step",
                           choices=("cache", "model"))
    ref_cache: str | None = option(None, "reference cache of the training pairs (default: <exp_dir>/ref_logps.pt; "
                                         "the validation pairs' is <exp_dir>/ref_logps_valid.pt)")
    valid_kl: bool = option(True, "validation computes kl and reward_acc with the reference model (kept in memory)")
    # preference loss (dpo, speechalign)
    loss_type: str = option("sigmoid", "see ttsrl.losses.preference", choices=LOSS_TYPES)
    beta: float = option(0.1, "inverse temperature of the implicit reward")
    label_smoothing: float = option(0.0, "cdpo/robust: assumed label-flip rate")
    average: bool | None = option(None, "length-normalized sequence log-probs (mean over tokens) instead of sums; "
                                        "unset: true for ipo (as TRL; false is refused), false otherwise")
    sft_weight: float = option(0.0, "weight of the chosen tokens' CE added to the loss")
    # diffro, grpo
    reward_model: str | None = option(None, "the reward model (ttsrl.bin.train_reward's folder or model.pt)")
    reward_weights: dict[str, float] = option({}, "reward components and weights, e.g. 'text=1.0' 'emotion=0.5' "
                                                  "(ttsrl.align.rewards; default: text 1, and emotion 1 when an "
                                                  "emotion target is given; grpo --reward audio: text, sim, f0v, "
                                                  "dnsmos of ttsrl.align.audio_reward)")
    target_emotion: str | None = option(None, "one target emotion (a name the reward model knows)")
    targets_file: str | None = option(None, "per-utterance target emotions: '<utt> <emotion>' lines")
    tau: float = option(1.0, "Gumbel-Softmax temperature")
    kl_weight: float = option(0.1, "weight of the KL to the reference: diffro the token-average KL of the full "
                                   "distributions; grpo beta, the k3 estimate on the sampled tokens")
    diffro_source: str = option("sample", "teacher-forced sequences: sampled from the policy every step, or the "
                                          "pairs' chosen ones", choices=("sample", "chosen"))
    sample_temperature: float = option(1.0, "diffro/grpo sampling temperature")
    sample_top_k: int = option(0, "diffro/grpo sampling top-k (0: off)")
    sample_top_p: float = option(1.0, "diffro/grpo sampling top-p (1: off)")
    sample_max_len_ratio: float = option(6.0, "diffro/grpo sampling: at most this many speech tokens per text token")
    sample_min_len_ratio: float = option(0.5, "diffro/grpo sampling: no <eos> before this many speech tokens per "
                                              "text token")
    sample_max_len: int = option(1000, "diffro/grpo sampling: at most this many speech tokens (grpo --dr_grpo: "
                                       "the constant that divides the token sums)")
    # grpo (online RL, ttsrl.align.grpo)
    reward: str = option("token", "grpo reward: token = the reward model (--reward_model) on the sampled tokens; "
                                  "audio = flow + vocoder, re-read by a recognizer that is not the judge "
                                  "(ttsrl.align.audio_reward; --data_dir, --tokenizer_dir, --flow)",
                         choices=("token", "audio"))
    group_size: int = option(8, "grpo: candidates sampled per (prompt, text) from the current policy (G)")
    num_updates: int = option(1, "grpo: policy updates per sampled batch (mu; > 1 reuses the samples, the clipped "
                                 "ratio to the sampling policy bounding each update)")
    clip_eps: float = option(0.2, "grpo: the policy ratio is clipped to [1 - clip_eps, 1 + clip_eps]")
    dr_grpo: bool = option(False, "grpo: Dr. GRPO (Liu et al. 2025): advantages not divided by the group's std, "
                                  "token sums divided by rows x sample_max_len instead of each sequence's length")
    skip_equal_groups: bool = option(True, "grpo: groups whose rewards are all equal (no signal) are left out")
    max_best_cer: float = option(1.0, "grpo: groups whose best CER proxy (the reward's recognizer, clamped to "
                                      "[0, 1]) is above this are left out (NeMo MagpieTTS; 1: never)")
    max_worst_cer: float = option(1.0, "grpo: groups whose worst CER proxy is above this are left out (1: never)")
    data_dir: str | None = option(None, "grpo --reward audio: data dir of --token_dir's set (text, prompt.scp, "
                                        "prompt_text)")
    valid_data_dir: str | None = option(None, "grpo --reward audio: data dir of --valid_token_dir's set")
    tokenizer_dir: str | None = option(None, "grpo --reward audio: the speech tokenizer (re-encodes the audio)")
    flow: str | None = option(None, "grpo --reward audio: model.pt of the flow-matching model")
    vocoder: str = option("griffin_lim", "grpo --reward audio: vocoder", choices=("griffin_lim", "vocos"))
    vocoder_path: str | None = option(None, "grpo --reward audio: model.pt of a trained vocos vocoder")
    flow_n_steps: int = option(10, "grpo --reward audio: ODE steps of the flow model")
    reward_asr: str = option("tokenizer", "grpo --reward audio: 'tokenizer' (its CTC head on the re-encoded audio) "
                                          "or a ttsrl.bin.train_asr model.pt that is not the judge")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices is not None and getattr(self, f.name) not in choices:
                raise ConfigError(f"--{f.name} {getattr(self, f.name)!r}: choose from {', '.join(choices)}")
        if self.method not in ONLINE_METHODS and not self.pairs:
            raise ConfigError(f"--method {self.method} needs --pairs")
        if (self.method == "diffro" or (self.method == "grpo" and self.reward == "token")) and not self.reward_model:
            raise ConfigError(f"--method {self.method} needs --reward_model")
        if self.method in ONLINE_METHODS and self.target_emotion and self.targets_file:
            raise ConfigError("give --target_emotion or --targets_file, not both")
        if self.method == "grpo":
            self._check_grpo()
        if self.valid_pairs and not self.valid_token_dir:
            raise ConfigError("--valid_pairs needs --valid_token_dir")
        if self.method in PREFERENCE_METHODS:
            try:
                check_preference_options(self.beta, self.loss_type, self.label_smoothing, self.average)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            self.average = resolve_average(self.loss_type, self.average)

    def _check_grpo(self) -> None:
        if self.group_size < 2:
            raise ConfigError(f"--group_size must be at least 2 (advantages compare a group), got {self.group_size}")
        if self.num_updates < 1:
            raise ConfigError(f"--num_updates must be at least 1, got {self.num_updates}")
        if self.clip_eps <= 0:
            raise ConfigError(f"--clip_eps must be positive, got {self.clip_eps}")
        if self.kl_weight < 0:
            raise ConfigError(f"--kl_weight must not be negative, got {self.kl_weight}")
        if self.sample_max_len < 1:
            raise ConfigError(f"--sample_max_len must be at least 1, got {self.sample_max_len}")
        for name in ("max_best_cer", "max_worst_cer"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must not be negative, got {getattr(self, name)}")
        if self.reward == "audio":
            missing = [f"--{n}" for n in ("data_dir", "tokenizer_dir", "flow") if not getattr(self, n)]
            if self.valid_token_dir and not self.valid_data_dir:
                missing.append("--valid_data_dir (for --valid_token_dir)")
            if missing:
                raise ConfigError(f"--reward audio needs {', '.join(missing)}")
            if self.target_emotion or self.targets_file:
                raise ConfigError("--reward audio has no emotion component: --target_emotion/--targets_file apply "
                                  "to --reward token")

    @property
    def sampling(self) -> SamplingConfig:
        """The sampling of DiffRO's teacher-forced sequences and of GRPO's groups (one candidate per row)."""
        return SamplingConfig(temperature=self.sample_temperature, top_k=self.sample_top_k, top_p=self.sample_top_p,
                              max_len_ratio=self.sample_max_len_ratio, min_len_ratio=self.sample_min_len_ratio,
                              max_len=self.sample_max_len)


# --------------------------------------------------------------------------- models
def build_policy(init_lm: str, method: str, overrides: dict | None = None) -> CodecLM:
    """The policy: the LM of ``init_lm`` with ``overrides`` (e.g. dropout) applied to its config.

    For ``coh`` a model without tags gets ``num_tags=2``: every weight but the new tag
    embedding (initialized as the model's embeddings are) is loaded from ``init_lm``.
    """
    ckpt = load_checkpoint(init_lm)
    conf = dict((ckpt.get("config") or {}).get("model_conf") or {})
    known = {f.name for f in dataclasses.fields(CodecLMConfig)}
    conf = {k: v for k, v in conf.items() if k in known}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise ConfigError(f"model_conf: unknown keys {unknown}; valid keys: {', '.join(sorted(known))}")
    init_tags = int(conf.get("num_tags", 0))
    conf.update(overrides or {})  # a resolved config.yaml of a coh run already says num_tags=2
    if method == "coh" and int(conf.get("num_tags", 0)) == 0:
        conf["num_tags"] = len(TAGS)
    if method == "coh" and conf["num_tags"] < len(TAGS):
        raise ConfigError(f"coh needs num_tags >= {len(TAGS)}, got {conf['num_tags']}")
    added_tags = init_tags == 0 and int(conf.get("num_tags", 0)) > 0
    policy = CodecLM(CodecLMConfig(**conf))
    missing, unexpected = policy.load_state_dict(ckpt["model"], strict=False)
    allowed = {"tag_emb.weight"} if added_tags else set()
    if set(missing) - allowed or unexpected:
        raise ConfigError(f"{init_lm}: weights do not fit the policy (missing {sorted(set(missing) - allowed)}, "
                          f"unexpected {sorted(unexpected)}); model_conf may only change non-architectural keys")
    return policy


def load_reference(init_lm: str, device) -> CodecLM:
    """The frozen reference: the LM of ``init_lm`` in eval mode, without gradients."""
    ref = load_codec_lm(init_lm, device)
    ref.requires_grad_(False)
    return ref.eval()


# --------------------------------------------------------------------------- loss
class AlignLoss:
    """``compute_loss(model, batch) -> (loss, stats)`` of an alignment method, for the Trainer.

    Args:
        opts: the method and its options.
        reference: the frozen reference LM (eval mode, no gradients), or None.
        train_cache, valid_cache: cached reference log-probs of the training / validation
            pairs (used instead of the reference's forward when given).
        reward_fn: diffro: ``(soft (B, K, V), lens, batch) -> {"reward": (B,), <component>: (B,)}``.

    The Trainer calls it with the model in train mode on training batches and in eval mode
    (under no_grad) on validation batches; validation adds ``kl`` and ``reward_acc``.
    """

    def __init__(self, opts: AlignOptions, reference: CodecLM | None = None, train_cache: RefLogps | None = None,
                 valid_cache: RefLogps | None = None,
                 reward_fn: Callable[[torch.Tensor, torch.Tensor, dict], dict] | None = None):
        self.opts = opts
        self.reference = reference
        self.train_cache, self.valid_cache = train_cache, valid_cache
        self.reward_fn = reward_fn
        if opts.method in PREFERENCE_METHODS and reference is None and train_cache is None:
            raise ValueError(f"{opts.method} needs the reference model or a reference cache")
        if opts.method == "diffro" and (reward_fn is None or (reference is None and opts.kl_weight)):
            raise ValueError("diffro needs a reward function and (with kl_weight > 0) the reference model")

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        training = unwrap_model(model).training
        method = self.opts.method
        if method in PREFERENCE_METHODS:
            loss, stats, pol = self._preference(model, batch, training)
        elif method in ("raft", "bon"):
            loss, stats, pol = self._sft(model, batch)
        elif method == "coh":
            loss, stats, pol = self._coh(model, batch, training)
        elif method == "diffro":
            loss, stats, pol = self._diffro(model, batch, training)
        else:
            raise ValueError(f"{method}: not a method of AlignLoss (grpo's loss is ttsrl.align.grpo.GRPOLoss)")
        if not training:
            stats.update(self._valid_extras(model, batch, pol, stats))
        stats["weight"] = batch["index"].shape[0]
        return loss, stats

    # ---------------------------------------------------------------- reference
    @torch.no_grad()
    def _ref_rows(self, batch: dict, rows: Sequence[str]):
        return forward_rows(self.reference, batch, rows)

    def _ref_sequences(self, batch: dict, training: bool):
        """Reference log-probs (B,) of chosen and rejected, and the reference's logits when it ran."""
        cache = self.train_cache if training else self.valid_cache
        if cache is not None:
            c, r = cache.sequence(batch["index"], self.opts.average)
            return c, r, None
        if self.reference is None:
            return None, None, None
        B = batch["index"].shape[0]
        logp, mask, out = self._ref_rows(batch, ("chosen", "rejected"))
        seq = sequence_logprobs(logp, mask, self.opts.average)
        return seq[:B], seq[B:], out.logits

    # ---------------------------------------------------------------- methods
    def _preference(self, model, batch, training):
        o = self.opts
        B = batch["index"].shape[0]
        logp, mask, out = forward_rows(model, batch, ("chosen", "rejected"))
        pol = sequence_logprobs(logp, mask, o.average)
        ref_c, ref_r, ref_logits = self._ref_sequences(batch, training)
        losses, r_c, r_r = preference_loss(pol[:B], pol[B:], ref_c, ref_r, o.beta, o.loss_type, o.label_smoothing)
        loss = losses.mean()
        stats = {"pref_loss": loss.detach(), "reward_acc": (r_c > r_r).float().mean(),
                 "chosen_reward": r_c.mean(), "rejected_reward": r_r.mean(), "margin": (r_c - r_r).mean()}
        if o.sft_weight:
            sft = sft_loss(logp[:B], mask[:B])
            loss = loss + o.sft_weight * sft
            stats["sft"] = sft.detach()
        if ref_logits is not None:  # the reference ran anyway: the KL is free
            stats["kl"] = masked_token_mean(token_kl(out.logits[:B].detach(), ref_logits[:B]), mask[:B])
        return loss, stats, (logp, mask, out.logits)

    def _sft(self, model, batch):
        logp, mask, out = forward_rows(model, batch, ("chosen",))
        loss = sft_loss(logp, mask)
        acc = ((out.logits.argmax(-1) == out.target) & mask).sum() / mask.sum().clamp(min=1)
        return loss, {"acc": acc.detach()}, None

    def _coh(self, model, batch, training):
        B = batch["index"].shape[0]
        dev = batch["index"].device
        tags = torch.cat([torch.full((B,), TAGS["good"], device=dev), torch.full((B,), TAGS["bad"], device=dev)])
        logp, mask, _ = forward_rows(model, batch, ("chosen", "rejected"), tags=tags)
        mask = mask.clone()
        mask[B:] &= batch["has_rejected"][:, None]  # pairs without a rejected sequence: only the good row
        loss = sft_loss(logp, mask)
        stats = {"good_nll": -sequence_logprobs(logp[:B], mask[:B]).sum() / mask[:B].sum().clamp(min=1)}
        if bool(batch["has_rejected"].any()):
            stats["bad_nll"] = -sequence_logprobs(logp[B:], mask[B:]).sum() / mask[B:].sum().clamp(min=1)
        return loss, {k: v.detach() for k, v in stats.items()}, None

    def _diffro(self, model, batch, training):
        o = self.opts
        core = unwrap_model(model)
        gen = None
        if training and o.diffro_source == "sample":
            # the seed comes from the global RNG, which the Trainer checkpoints: resuming is exact
            seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
            cfg = dataclasses.replace(o.sampling, num_candidates=1, seed=seed)
            tags = None if core.config.num_tags == 0 else torch.zeros_like(batch["text_lens"])
            res = sample(core, batch["text"], batch["text_lens"], cfg, prompt=batch["prompt"],
                         prompt_lens=batch["prompt_lens"], target_text_lens=batch["target_text_lens"], tags=tags)
            prompts = [batch["prompt"][i, : int(n)] for i, n in enumerate(batch["prompt_lens"])]
            speech = speech_rows(prompts, [t.clone() for t in res.tokens])  # clone: out of inference mode
            speech = (speech[0].to(batch["text"].device), speech[1].to(batch["text"].device))
        else:
            speech = (batch["chosen"], batch["chosen_lens"])
            if not training:  # the same Gumbel noise at every validation: comparable numbers
                gen = torch.Generator(device=batch["text"].device).manual_seed(int(batch["index"].sum()))
        _, mask, out = forward_rows(model, batch, ("chosen",), speech=speech)
        ref_logits = None
        if self.reference is not None:
            with torch.no_grad():
                ref_logits = forward_rows(self.reference, batch, ("chosen",), speech=speech)[2].logits
        parts: dict[str, torch.Tensor] = {}

        def reward(soft, lens):
            parts.update(self.reward_fn(soft, lens, batch))
            return parts["reward"]

        res = diffro_loss(out.logits, ref_logits, mask, reward, o.tau, o.kl_weight, generator=gen)
        stats = {f"reward_{k}": v.detach().float().mean() for k, v in parts.items() if k != "reward"}
        stats.update(reward=res.reward.detach().float().mean(), kl=res.kl.detach(),
                     gen_len=res.lens.float().mean())
        return res.loss, stats, None

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def _valid_extras(self, model, batch: dict, pol, stats: dict) -> dict:
        """``kl`` and ``reward_acc`` of a validation batch when the method's stats lack them.

        kl: token-average KL(policy || reference) along the chosen sequences (needs the
        reference model); reward_acc: the share of pairs with a rejected sequence whose
        implicit reward (log-ratio to the reference; the sign does not depend on beta) is
        higher for chosen. The policy runs under its default tag ("good" for a CoH model).
        """
        B = batch["index"].shape[0]
        has = batch["has_rejected"]
        want_kl = "kl" not in stats and self.reference is not None
        want_acc = ("reward_acc" not in stats and bool(has.any())
                    and (self.reference is not None or self.valid_cache is not None))
        if not (want_kl or want_acc):
            return {}
        if pol is None:
            logp, mask, out = forward_rows(model, batch, ("chosen", "rejected"))
            logits = out.logits
        else:
            logp, mask, logits = pol
        res = {}
        if self.reference is not None:
            # the same rows as the policy's pass, so both are padded to the same length
            ref_logp, ref_mask, ref_out = self._ref_rows(batch, ("chosen", "rejected"))
            if want_kl:
                res["kl"] = masked_token_mean(token_kl(logits[:B], ref_out.logits[:B]), mask[:B])
            if want_acc:
                ref_seq = sequence_logprobs(ref_logp, ref_mask)
                ref_c, ref_r = ref_seq[:B], ref_seq[B:]
        elif want_acc:
            ref_c, ref_r = self.valid_cache.sequence(batch["index"])
        if want_acc:
            seq = sequence_logprobs(logp, mask)
            res["reward_acc"] = ((seq[:B] - ref_c) > (seq[B:] - ref_r))[has].float().mean()
        return res


# --------------------------------------------------------------------------- reward (diffro)
def build_reward_fn(reward_model: str, device, reward_weights: dict | None = None, target_emotion: str | None = None,
                    targets_file: str | None = None) -> Callable[[torch.Tensor, torch.Tensor, dict], dict]:
    """The token-level reward of DiffRO and GRPO: ``ttsrl.align.rewards.TokenReward`` on the frozen reward model
    of ``reward_model``, as ``reward_fn(tokens (soft one-hots or ids), lens, batch, cer=False) -> components``.

    ``reward_weights``: component -> weight (default text 1, and emotion 1 with a target);
    the target emotion is ``target_emotion`` for every utterance, or per utterance from
    ``targets_file`` (``<utt> <emotion>`` lines).
    """
    from ttsrl.align.rewards import TokenReward
    from ttsrl.data.datadir import read_kv
    from ttsrl.models.reward import load_reward_model

    rm = load_reward_model(reward_model, device)
    rm.requires_grad_(False)
    if target_emotion and targets_file:
        raise ConfigError("give --target_emotion or --targets_file, not both")
    targets: Any = target_emotion or (read_kv(targets_file) if targets_file else None)
    weights = {k: float(v) for k, v in (reward_weights or {"text": 1.0}).items()}
    if targets is not None:
        weights.setdefault("emotion", 1.0)
    scorer = TokenReward(rm, weights)
    if scorer.needs_targets and targets is None:
        raise ConfigError(f"reward weights {scorer.needs_targets} need targets: --target_emotion or --targets_file")

    def reward_fn(soft: torch.Tensor, lens: torch.Tensor, batch: dict, cer: bool = False) -> dict:
        tg = {}
        if targets is not None:
            if isinstance(targets, str):
                tg["emotion"] = targets
            else:
                missing = [u for u in batch["utts"] if u not in targets]
                if missing:
                    raise ValueError(f"{targets_file}: no target emotion for {missing[:5]}")
                tg["emotion"] = [targets[u] for u in batch["utts"]]
        extra = {"cer": True} if cer else {}  # the CER proxy only when asked (grpo): DiffRO's call is unchanged
        return scorer.score(soft, lens, text=batch["reward_text"], text_lens=batch["reward_text_lens"], targets=tg,
                            **extra)

    return reward_fn


# --------------------------------------------------------------------------- text units
def carry_text_units(init_lm: str, token_dir: str, exp_dir: str) -> list[str]:
    """Copy the text-unit files of ``init_lm``'s folder (or, for an LM without them, of ``token_dir``)
    into ``exp_dir``; a token dir whose ``tokens.txt`` differs from the LM's raises ConfigError."""
    from ttsrl.text.tokenizer import copy_text_units, read_token_list

    lm_dir = init_lm if os.path.isdir(init_lm) else os.path.dirname(os.path.abspath(init_lm))
    lm_list, dir_list = os.path.join(lm_dir, "tokens.txt"), os.path.join(token_dir, "tokens.txt")
    if not os.path.isfile(lm_list):
        return copy_text_units(token_dir, exp_dir)
    if os.path.isfile(dir_list) and read_token_list(lm_list) != read_token_list(dir_list):
        raise ConfigError(f"the text units of {token_dir} ({dir_list}) are not those of --init_lm ({lm_list}): "
                          "tokenize the set with the LM's units")
    return copy_text_units(lm_dir, exp_dir)
