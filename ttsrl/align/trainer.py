"""Aligning the codec LM to preferences and rewards: DPO, SpeechAlign, RAFT / best-of-N, CoH, DiffRO.

The policy starts from a trained LM (``--init_lm``), which is also the frozen reference;
the shared :class:`ttsrl.train.trainer.Trainer` runs the loop (checkpoints, exact resume,
validation, ``best.pt`` by ``--best_metric``, ``model.pt``). Methods:

===========  =============================================================================
dpo          preference loss (``--loss_type`` sigmoid/cdpo/robust/ipo/hinge, ``--beta``,
             ``--label_smoothing``, ``--average``) on chosen/rejected pairs
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

Usage::

    python -m ttsrl.bin.train_align --config conf/align/dpo.yaml --method dpo \\
        --init_lm exp/base/lm/model.pt --pairs exp/base/pairs/train/pairs.jsonl \\
        --token_dir dump/tokens/train --valid_pairs exp/base/pairs/dev/pairs.jsonl \\
        --valid_token_dir dump/tokens/dev --exp_dir exp/dpo/lm
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ttsrl.align.data import PairDataset, collate_pairs, forward_rows, speech_rows
from ttsrl.align.ref_cache import RefLogps, load_or_compute_ref_logps
from ttsrl.data.token_dataset import has_prompts
from ttsrl.losses.diffro import diffro_loss, masked_token_mean, token_kl
from ttsrl.losses.preference import LOSS_TYPES, preference_loss, sequence_logprobs, sft_loss
from ttsrl.models.codec_lm import CodecLM, CodecLMConfig
from ttsrl.sample.sampler import TAGS, SamplingConfig, sample
from ttsrl.tasks.base import Task, get_parser, setup_training, write_metrics
from ttsrl.train import distributed as du
from ttsrl.train.config import ConfigError, NestedDictAction, parse_with_config, str2bool
from ttsrl.train.sampler import build_loader
from ttsrl.train.trainer import Trainer, load_checkpoint, unwrap_model

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "AlignLoss", "AlignOptions", "AlignTask", "build_policy", "carry_text_units", "run_align"]

METHODS = ("dpo", "speechalign", "raft", "bon", "coh", "diffro")
PREFERENCE_METHODS = ("dpo", "speechalign")


class AlignTask(Task):
    """The options of ``ttsrl.bin.train_align`` (:func:`run_align` runs them: unlike
    :func:`ttsrl.tasks.base.run_task` the loss needs the reference, its caches and the reward model)."""

    description = "Align a trained codec LM to preference pairs or a reward model (DPO, RAFT, CoH, DiffRO)."

    @classmethod
    def add_task_args(cls, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("alignment")
        g.add_argument("--method", required=True, choices=METHODS, help="alignment method (see ttsrl.align.trainer)")
        g.add_argument("--init_lm", required=True, help="model.pt of the trained LM: the policy's start and the reference")
        g.add_argument("--pairs", default=None, help="pairs.jsonl of ttsrl.bin.make_pairs (optional for diffro: "
                       "without it every utterance of --token_dir is used with its ground-truth tokens)")
        g.add_argument("--token_dir", required=True, help="token dir of the pairs' set (text, prompts)")
        g.add_argument("--valid_pairs", default=None, help="pairs.jsonl for validation and early stopping")
        g.add_argument("--valid_token_dir", default=None, help="token dir of the validation pairs")
        g.add_argument("--no_prompt", action="store_true",
                       help="ignore the token dirs' zero-shot prompts (default: used when present, as in sampling)")
        g = p.add_argument_group("reference")
        g.add_argument("--ref_mode", default="cache", choices=("cache", "model"),
                       help="cache: the reference's log-probs computed once per pair file (dpo, speechalign); "
                       "model: the frozen reference runs in every step")
        g.add_argument("--ref_cache", default=None, help="reference cache of the training pairs "
                       "(default: <exp_dir>/ref_logps.pt; the validation pairs' is <exp_dir>/ref_logps_valid.pt)")
        g.add_argument("--valid_kl", type=str2bool, default=True,
                       help="validation computes kl and reward_acc with the reference model (kept in memory)")
        g = p.add_argument_group("preference loss (dpo, speechalign)")
        g.add_argument("--loss_type", default="sigmoid", choices=LOSS_TYPES, help="see ttsrl.losses.preference")
        g.add_argument("--beta", type=float, default=0.1, help="inverse temperature of the implicit reward")
        g.add_argument("--label_smoothing", type=float, default=0.0, help="cdpo/robust: assumed label-flip rate")
        g.add_argument("--average", type=str2bool, default=False,
                       help="length-normalized sequence log-probs (mean over tokens) instead of sums")
        g.add_argument("--sft_weight", type=float, default=0.0, help="weight of the chosen tokens' CE added to the loss")
        g = p.add_argument_group("diffro")
        g.add_argument("--reward_model", default=None, help="the reward model (ttsrl.bin.train_reward's folder or model.pt)")
        g.add_argument("--reward_weights", action=NestedDictAction, default={},
                       help="reward components and weights, e.g. 'text=1.0' 'emotion=0.5' (ttsrl.align.rewards; "
                       "default: text 1, and emotion 1 when an emotion target is given)")
        g.add_argument("--target_emotion", default=None, help="one target emotion (a name the reward model knows)")
        g.add_argument("--targets_file", default=None, help="per-utterance target emotions: '<utt> <emotion>' lines")
        g.add_argument("--tau", type=float, default=1.0, help="Gumbel-Softmax temperature")
        g.add_argument("--kl_weight", type=float, default=0.1, help="weight of the token-average KL to the reference")
        g.add_argument("--diffro_source", default="sample", choices=("sample", "chosen"),
                       help="teacher-forced sequences: sampled from the policy every step, or the pairs' chosen ones")
        g.add_argument("--sample_temperature", type=float, default=1.0, help="diffro sampling temperature")
        g.add_argument("--sample_top_k", type=int, default=0, help="diffro sampling top-k (0: off)")
        g.add_argument("--sample_top_p", type=float, default=1.0, help="diffro sampling top-p (1: off)")
        g.add_argument("--sample_max_len_ratio", type=float, default=6.0,
                       help="diffro sampling: at most this many speech tokens per text token")
        g.add_argument("--sample_min_len_ratio", type=float, default=0.5,
                       help="diffro sampling: no <eos> before this many speech tokens per text token")


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
    from ttsrl.tasks.lm import load_codec_lm

    ref = load_codec_lm(init_lm, device)
    ref.requires_grad_(False)
    return ref.eval()


# --------------------------------------------------------------------------- loss
@dataclasses.dataclass
class AlignOptions:
    method: str = "dpo"
    loss_type: str = "sigmoid"
    beta: float = 0.1
    label_smoothing: float = 0.0
    average: bool = False
    sft_weight: float = 0.0
    tau: float = 1.0
    kl_weight: float = 0.1
    diffro_source: str = "sample"
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)


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
        else:
            loss, stats, pol = self._diffro(model, batch, training)
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
            tags = None if core.cfg.num_tags == 0 else torch.zeros_like(batch["text_lens"])
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
def build_reward_fn(args, device) -> Callable[[torch.Tensor, torch.Tensor, dict], dict]:
    """The DiffRO reward: ``ttsrl.align.rewards.TokenReward`` on the frozen reward model."""
    from ttsrl.align.rewards import TokenReward
    from ttsrl.data.datadir import read_kv
    from ttsrl.models.reward import load_reward_model

    rm = load_reward_model(args.reward_model, device)
    rm.requires_grad_(False)
    if args.target_emotion and args.targets_file:
        raise ConfigError("give --target_emotion or --targets_file, not both")
    targets: Any = args.target_emotion or (read_kv(args.targets_file) if args.targets_file else None)
    weights = {k: float(v) for k, v in (args.reward_weights or {"text": 1.0}).items()}
    if targets is not None:
        weights.setdefault("emotion", 1.0)
    scorer = TokenReward(rm, weights)
    if scorer.needs_targets and targets is None:
        raise ConfigError(f"reward weights {scorer.needs_targets} need targets: --target_emotion or --targets_file")

    def reward_fn(soft: torch.Tensor, lens: torch.Tensor, batch: dict) -> dict:
        tg = {}
        if targets is not None:
            if isinstance(targets, str):
                tg["emotion"] = targets
            else:
                missing = [u for u in batch["utts"] if u not in targets]
                if missing:
                    raise ValueError(f"{args.targets_file}: no target emotion for {missing[:5]}")
                tg["emotion"] = [targets[u] for u in batch["utts"]]
        return scorer.score(soft, lens, text=batch["reward_text"], text_lens=batch["reward_text_lens"], targets=tg)

    return reward_fn


# --------------------------------------------------------------------------- run
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


def _check_args(args) -> None:
    if args.method != "diffro" and not args.pairs:
        raise ConfigError(f"--method {args.method} needs --pairs")
    if args.method == "diffro" and not args.reward_model:
        raise ConfigError("--method diffro needs --reward_model")
    if bool(args.valid_pairs) and not args.valid_token_dir:
        raise ConfigError("--valid_pairs needs --valid_token_dir")
    if args.method in PREFERENCE_METHODS:
        preference_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), args.beta,
                        args.loss_type, args.label_smoothing)  # the options' errors before any work


def run_align(argv: Sequence[str] | None = None) -> dict:
    """Parse the options, build the policy, reference, data and loss, train, write metrics.json."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    args = parse_with_config(get_parser(AlignTask), argv)
    try:
        _check_args(args)
    except (ConfigError, ValueError) as e:
        raise SystemExit(f"train_align: {e}") from e
    device, cfg = setup_training(args)
    method = args.method
    policy = build_policy(args.init_lm, method, args.model_conf)
    args.model_conf = dataclasses.asdict(policy.cfg)  # model.pt rebuilds the policy (load_codec_lm)
    V = policy.cfg.speech_vocab_size
    pair_rows = 1 if method in ("raft", "bon", "diffro") else 2  # LM rows per pair in a training step

    train_ds = PairDataset(args.token_dir, args.pairs, not args.no_prompt and has_prompts(args.token_dir),
                           need_rejected=method in PREFERENCE_METHODS, rows=pair_rows, speech_vocab_size=V)
    valid_ds = None
    if args.valid_pairs or (method == "diffro" and args.valid_token_dir):
        valid_ds = PairDataset(args.valid_token_dir, args.valid_pairs,
                               not args.no_prompt and has_prompts(args.valid_token_dir),
                               need_rejected=method in PREFERENCE_METHODS, rows=2, speech_vocab_size=V)
    os.makedirs(args.exp_dir, exist_ok=True)
    if du.is_main():
        try:
            carry_text_units(args.init_lm, args.token_dir, args.exp_dir)
        except ConfigError as e:
            raise SystemExit(f"train_align: {e}") from e

    use_cache = method in PREFERENCE_METHODS and args.ref_mode == "cache"
    keep_ref = (method == "diffro" or (method in PREFERENCE_METHODS and args.ref_mode == "model")
                or (valid_ds is not None and args.valid_kl))
    reference = load_reference(args.init_lm, device) if (keep_ref or use_cache) else None
    train_cache = valid_cache = None
    t0 = time.time()
    if use_cache:
        train_cache = load_or_compute_ref_logps(args.ref_cache or os.path.join(args.exp_dir, "ref_logps.pt"),
                                                reference, train_ds, args.init_lm, args.max_tokens, device)
        if valid_ds is not None:
            valid_cache = load_or_compute_ref_logps(os.path.join(args.exp_dir, "ref_logps_valid.pt"), reference,
                                                    valid_ds, args.init_lm, args.max_tokens, device)
    ref_seconds = time.time() - t0
    if not keep_ref:
        reference = None  # the caches replace it: no memory for a second model

    opts = AlignOptions(method=method, loss_type=args.loss_type, beta=args.beta,
                        label_smoothing=args.label_smoothing, average=args.average, sft_weight=args.sft_weight,
                        tau=args.tau, kl_weight=args.kl_weight, diffro_source=args.diffro_source,
                        sampling=SamplingConfig(temperature=args.sample_temperature, top_k=args.sample_top_k,
                                                top_p=args.sample_top_p, max_len_ratio=args.sample_max_len_ratio,
                                                min_len_ratio=args.sample_min_len_ratio))
    reward_fn = build_reward_fn(args, device) if method == "diffro" else None
    loss_fn = AlignLoss(opts, reference, train_cache, valid_cache, reward_fn)

    train = build_loader(train_ds, train_ds.lengths, args.max_tokens, collate_pairs, seed=cfg.seed,
                         num_workers=cfg.num_workers)
    valid = None
    if valid_ds is not None:
        valid = build_loader(valid_ds, valid_ds.lengths, args.max_tokens, collate_pairs, shuffle=False)
    trainer = Trainer(policy, train, valid, loss_fn, cfg, args.exp_dir, resolved_config=args, device=device)
    t0 = time.time()
    summary = trainer.train()
    train_seconds = time.time() - t0

    metrics: dict[str, Any] = {"method": method, "train_seconds": round(train_seconds, 2),
                               "ref_cache_seconds": round(ref_seconds, 2), "steps": summary["step"],
                               "best_step": summary["best_step"], "pairs": len(train_ds)}
    if valid is not None:  # the best model (model.pt) on the validation pairs
        policy.load_state_dict(load_checkpoint(os.path.join(args.exp_dir, "model.pt"))["model"])
        stats = trainer.validate()
        metrics.update({f"val_{k}": v for k, v in stats.items()})
        if "kl" in stats:
            metrics["kl"] = stats["kl"]
    if du.is_main():
        write_metrics(os.path.join(args.exp_dir, "metrics.json"), metrics)
        logger.info("metrics: %s", json.dumps(metrics))
    summary["metrics"] = metrics
    du.cleanup()
    return summary
